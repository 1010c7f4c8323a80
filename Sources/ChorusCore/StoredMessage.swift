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
