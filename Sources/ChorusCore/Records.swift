#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The owner of rows until accounts arrive: every row has an owner column from day one.
public let localOwnerID = "local"

/// A stored conversation.
public struct Conversation: Sendable, Equatable, Codable {
    public var id: String
    public var ownerID: String
    public var title: String?
    public var model: String?
    /// Milliseconds since 1970.
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, ownerID: String, title: String?, model: String?, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.ownerID = ownerID
        self.title = title
        self.model = model
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The life of an assistant message.
public enum MessageStatus: String, Sendable, Codable, Equatable {
    /// Finished normally.
    case complete
    /// Checkpoint of a stream still running.
    case streaming
    /// Interrupted: upstream error, timeout or client disconnect (see metadata).
    case partial
}

/// A stored message. `content` is the answer text; `reasoning` the thinking, kept apart.
public struct StoredMessage: Sendable, Equatable, Codable {
    public var id: String
    public var conversationID: String
    public var ownerID: String
    public var role: String
    public var content: String
    public var reasoning: String?
    /// The OpenAI content parts, when the message had more than text (images).
    public var parts: JSONValue?
    /// An assistant message's tool calls (OpenAI's `tool_calls` array).
    public var toolCalls: JSONValue?
    /// A tool message's answer to this call.
    public var toolCallID: String?
    /// The participant's `name`, when the client gave one.
    public var name: String?
    public var model: String?
    public var status: MessageStatus
    public var metadata: [String: JSONValue]
    public var usage: Usage?
    /// The request (or task) that produced this message; one assistant message per turn.
    public var turnID: String?
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(
        id: String, conversationID: String, ownerID: String, role: String, content: String,
        reasoning: String? = nil, parts: JSONValue? = nil, toolCalls: JSONValue? = nil, toolCallID: String? = nil,
        name: String? = nil, model: String? = nil, status: MessageStatus = .complete, metadata: [String: JSONValue] = [:], usage: Usage? = nil,
        turnID: String? = nil, createdAt: Int64, updatedAt: Int64
    ) {
        self.id = id
        self.conversationID = conversationID
        self.ownerID = ownerID
        self.role = role
        self.content = content
        self.reasoning = reasoning
        self.parts = parts
        self.toolCalls = toolCalls
        self.toolCallID = toolCallID
        self.name = name
        self.model = model
        self.status = status
        self.metadata = metadata
        self.usage = usage
        self.turnID = turnID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Identifiers with a readable prefix: `req_…`, `conv_…`, `msg_…`, `task_…`.
public enum Identifier {
    /// `prefix` and 24 characters of [0-9A-Za-z] (about 143 bits).
    public static func make(_ prefix: String) -> String {
        prefix + RandomText.make(24)
    }

    /// `prefix`, 9 characters of the millisecond (base 36, [0-9a-z], zero-padded), then 15 random
    /// characters of [0-9A-Za-z] (about 89 bits): ids of stored rows sort by when they were made.
    /// A new row's primary-key entry (and that of every index led by such an id) then lands on the
    /// rightmost page of its B-tree, the same page for the rows of one commit, instead of a random
    /// page each: SQLite writes each changed page to its WAL and PostgreSQL logs a changed page
    /// whole after each checkpoint. Digits and lower-case letters keep the order under any
    /// collation (a locale's collation puts `a` before `B`). Base 36 in 9 characters lasts past
    /// the year 5000.
    public static func ordered(_ prefix: String, milliseconds: Int64 = nowMilliseconds()) -> String {
        var time = UInt64(max(0, milliseconds))
        let stamp = String(unsafeUninitializedCapacity: timeCharacters) { buffer in
            for index in stride(from: timeCharacters - 1, through: 0, by: -1) {
                buffer[index] = base36[Int(time % 36)]
                time /= 36
            }
            return timeCharacters
        }
        return prefix + stamp + RandomText.make(15)
    }

    static let timeCharacters = 9
    static let base36 = Array("0123456789abcdefghijklmnopqrstuvwxyz".utf8)
}

/// Random text from [0-9A-Za-z], from the system's cryptographic generator: the bytes for a whole
/// text in one call (`arc4random_buf`, one `getrandom` on Linux), not a call per character or per
/// 8 bytes.
public enum RandomText {
    static let alphabet = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    public static func make(_ count: Int) -> String {
        String(unsafeUninitializedCapacity: count) { buffer in
            var filled = 0
            // 248 = 4 × 62: a byte ≥ 248 is dropped, which keeps every character equally likely;
            // a quarter more bytes than characters is nearly always enough in one draw.
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count + count / 4 + 8) { bytes in
                while filled < count {
                    arc4random_buf(bytes.baseAddress!, bytes.count)
                    for byte in bytes where byte < 248 && filled < count {
                        buffer[filled] = alphabet[Int(byte % 62)]
                        filled += 1
                    }
                }
            }
            return count
        }
    }
}

/// Wall-clock milliseconds since 1970, the unit of every stored timestamp.
public func nowMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
