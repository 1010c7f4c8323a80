public import NIOCore

/// An incremental RESP2/RESP3 reply parser.
///
/// Feed it the bytes received so far; ``next(from:)`` returns one complete reply, or `nil` when
/// more bytes are needed. Bytes are consumed one *token* (a header line, or a whole scalar such as
/// a bulk string) at a time, and the aggregates under construction are kept on an explicit stack,
/// so a reply split at any byte is parsed correctly and a large reply arriving in many reads is not
/// re-parsed from its start. Call ``next(from:)`` again after a reply: the buffer may hold several.
///
/// Invalid input throws ``RedisError/protocolError(_:)``; after that the parser's state is
/// undefined and the connection must be dropped.
public struct RESPParser: Sendable {
    /// Bounds that stop garbage or a hostile peer from making the client allocate without limit.
    public struct Limits: Sendable, Hashable {
        /// Longest bulk string accepted (Redis's own limit is 512 MiB).
        public var maxBulkLength: Int = 512 * 1024 * 1024
        /// Most elements in one array, set, push, or pairs in one map.
        public var maxAggregateCount: Int = 1 << 26
        /// Deepest nesting of aggregates.
        public var maxDepth: Int = 128
        /// Longest header line or simple string/error before a CRLF must have appeared.
        public var maxLineLength: Int = 1024 * 1024

        public init() {}
    }

    public let limits: Limits
    private var stack: [Frame] = []

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Whether the parser is in the middle of an aggregate (some of a reply has been consumed).
    public var isInsideReply: Bool { !self.stack.isEmpty }

    /// Parses the next complete reply from `buffer`, consuming its bytes, or returns `nil` when it has not fully arrived.
    public mutating func next(from buffer: inout ByteBuffer) throws(RedisError) -> RESPValue? {
        while let token = try self.readToken(from: &buffer) {
            var value: RESPValue
            switch token {
            case .value(let scalar):
                value = scalar
            case .aggregate(let kind, let count):
                if count > 0 {
                    guard self.stack.count < self.limits.maxDepth else {
                        throw .protocolError("replies nested deeper than \(self.limits.maxDepth) levels")
                    }
                    self.stack.append(Frame(kind: kind, remaining: count))
                    continue
                }
                guard let empty = Frame(kind: kind, remaining: 0).makeValue() else { continue }  // an empty attribute
                value = empty
            }
            // Fold the finished value into the enclosing aggregates, closing every one it completes.
            var isWholeReply = true
            while !self.stack.isEmpty {
                let top = self.stack.count - 1
                self.stack[top].elements.append(value)
                self.stack[top].remaining -= 1
                guard self.stack[top].remaining == 0, let completed = self.stack.removeLast().makeValue() else {
                    // Either the aggregate needs more elements, or an attribute just ended and is dropped.
                    isWholeReply = false
                    break
                }
                value = completed
            }
            if isWholeReply { return value }
        }
        return nil
    }

    /// Forgets any partly parsed reply.
    public mutating func reset() {
        self.stack.removeAll()
    }

    // MARK: - Tokens

    private enum AggregateKind {
        case array, set, push, map, attribute
    }

    private enum Token {
        case value(RESPValue)
        case aggregate(AggregateKind, count: Int)
    }

    private struct Frame {
        let kind: AggregateKind
        var remaining: Int
        var elements: [RESPValue] = []

        init(kind: AggregateKind, remaining: Int) {
            self.kind = kind
            self.remaining = remaining
            self.elements.reserveCapacity(Swift.min(remaining, 1024))
        }

        /// The finished aggregate, or `nil` for an attribute (which RESP3 says a client may ignore).
        func makeValue() -> RESPValue? {
            switch self.kind {
            case .array: .array(self.elements)
            case .set: .set(self.elements)
            case .push: .push(self.elements)
            case .map:
                .map(stride(from: 0, to: self.elements.count, by: 2).map {
                    (key: self.elements[$0], value: self.elements[$0 + 1])
                })
            case .attribute: nil
            }
        }
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// Reads one token, consuming its bytes, or returns `nil` (consuming nothing) when it is incomplete.
    private func readToken(from buffer: inout ByteBuffer) throws(RedisError) -> Token? {
        guard let lineLength = try self.lineLength(in: buffer) else { return nil }
        let start = buffer.readerIndex
        let type = buffer.getInteger(at: start, as: UInt8.self)!
        let contentStart = start + 1
        let contentLength = lineLength - 1
        let afterLine = lineLength + 2

        switch type {
        case UInt8(ascii: "+"):
            let text = buffer.getString(at: contentStart, length: contentLength)!
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.simpleString(text))

        case UInt8(ascii: "-"):
            let text = buffer.getString(at: contentStart, length: contentLength)!
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.error(text))

        case UInt8(ascii: ":"):
            let value = try Self.integer(in: buffer, at: contentStart, length: contentLength, what: "integer")
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.integer(value))

        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try Self.integer(in: buffer, at: contentStart, length: contentLength, what: "length")
            if length == -1, type == UInt8(ascii: "$") {
                buffer.moveReaderIndex(forwardBy: afterLine)
                return .value(.null)
            }
            guard length >= 0 else { throw .protocolError("negative length \(length) for a bulk value") }
            guard length <= self.limits.maxBulkLength else {
                throw .protocolError("bulk value of \(length) bytes exceeds the limit of \(self.limits.maxBulkLength)")
            }
            guard buffer.readableBytes >= afterLine + length + 2 else { return nil }
            let payloadEnd = start + afterLine + length
            guard buffer.getInteger(at: payloadEnd, as: UInt8.self) == Self.cr,
                buffer.getInteger(at: payloadEnd + 1, as: UInt8.self) == Self.lf
            else {
                throw .protocolError("bulk value of \(length) bytes is not followed by CRLF")
            }
            buffer.moveReaderIndex(forwardBy: afterLine)
            let payload = buffer.readSlice(length: length)!
            buffer.moveReaderIndex(forwardBy: 2)
            switch type {
            case UInt8(ascii: "$"):
                return .value(.bulkString(payload))
            case UInt8(ascii: "!"):
                return .value(.error(String(buffer: payload)))
            default:
                guard length >= 4, payload.getInteger(at: payload.readerIndex + 3, as: UInt8.self) == UInt8(ascii: ":") else {
                    throw .protocolError("verbatim string does not start with a three-letter format and ':'")
                }
                let format = payload.getString(at: payload.readerIndex, length: 3)!
                let text = payload.getString(at: payload.readerIndex + 4, length: length - 4)!
                return .value(.verbatimString(format: format, text: text))
            }

        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            let count = try Self.integer(in: buffer, at: contentStart, length: contentLength, what: "count")
            if count == -1, type == UInt8(ascii: "*") {
                buffer.moveReaderIndex(forwardBy: afterLine)
                return .value(.null)
            }
            guard count >= 0 else { throw .protocolError("negative count \(count) for an aggregate") }
            guard count <= self.limits.maxAggregateCount else {
                throw .protocolError("aggregate of \(count) elements exceeds the limit of \(self.limits.maxAggregateCount)")
            }
            buffer.moveReaderIndex(forwardBy: afterLine)
            switch type {
            case UInt8(ascii: "*"): return .aggregate(.array, count: count)
            case UInt8(ascii: "~"): return .aggregate(.set, count: count)
            case UInt8(ascii: ">"): return .aggregate(.push, count: count)
            case UInt8(ascii: "%"): return .aggregate(.map, count: count * 2)
            default: return .aggregate(.attribute, count: count * 2)
            }

        case UInt8(ascii: "_"):
            guard contentLength == 0 else { throw .protocolError("null ('_') followed by unexpected bytes") }
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.null)

        case UInt8(ascii: "#"):
            let flag = contentLength == 1 ? buffer.getInteger(at: contentStart, as: UInt8.self) : nil
            let value: Bool
            switch flag {
            case UInt8(ascii: "t"): value = true
            case UInt8(ascii: "f"): value = false
            default: throw .protocolError("boolean ('#') must be 't' or 'f'")
            }
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.boolean(value))

        case UInt8(ascii: ","):
            let text = buffer.getString(at: contentStart, length: contentLength)!
            guard let value = Double(text) else { throw .protocolError("invalid double '\(text.prefix(40))'") }
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.double(value))

        case UInt8(ascii: "("):
            let text = buffer.getString(at: contentStart, length: contentLength)!
            let digits = text.first == "-" || text.first == "+" ? text.dropFirst() : Substring(text)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                throw .protocolError("invalid big number '\(text.prefix(40))'")
            }
            buffer.moveReaderIndex(forwardBy: afterLine)
            return .value(.bigNumber(text))

        default:
            let printable = type >= 0x20 && type < 0x7F ? " ('\(Character(Unicode.Scalar(type)))')" : ""
            let hex = String(type, radix: 16, uppercase: true)
            throw .protocolError("unexpected RESP type byte 0x\(hex.count == 1 ? "0" + hex : hex)\(printable)")
        }
    }

    /// The length of the line at the reader index (type byte included, CRLF excluded), or `nil` when its CRLF has not arrived.
    private func lineLength(in buffer: ByteBuffer) throws(RedisError) -> Int? {
        let limit = self.limits.maxLineLength
        let found: Int? = buffer.withUnsafeReadableBytes { bytes in
            bytes.firstIndex(of: Self.cr)
        }
        guard let cr = found else {
            if buffer.readableBytes > limit {
                throw .protocolError("no CRLF within \(limit) bytes")
            }
            return nil
        }
        guard cr > 0 else { throw .protocolError("empty line where a RESP type byte was expected") }
        guard cr + 1 < buffer.readableBytes else { return nil }
        guard buffer.getInteger(at: buffer.readerIndex + cr + 1, as: UInt8.self) == Self.lf else {
            throw .protocolError("carriage return not followed by a line feed")
        }
        return cr
    }

    /// Parses an ASCII decimal integer (optional '-' or '+') without allocating.
    private static func integer(in buffer: ByteBuffer, at index: Int, length: Int, what: String) throws(RedisError) -> Int {
        guard length > 0, let view = buffer.viewBytes(at: index, length: length) else {
            throw .protocolError("empty \(what)")
        }
        var negative = false
        var result = 0
        var sawDigit = false
        for (offset, byte) in view.enumerated() {
            if offset == 0, byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") {
                negative = byte == UInt8(ascii: "-")
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                throw .protocolError("invalid \(what) '\(String(decoding: view.prefix(40), as: UTF8.self))'")
            }
            let digit = Int(byte &- UInt8(ascii: "0"))
            let (shifted, overflow1) = result.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { throw .protocolError("\(what) does not fit in 64 bits") }
            result = next
            sawDigit = true
        }
        guard sawDigit else { throw .protocolError("invalid \(what) without digits") }
        return result
    }
}
