import ChorusCore
import Hummingbird

// `/v1/conversations` on the wire: times in whole seconds, plus `updated_at_ms` for paging.

/// A conversation, without its messages.
struct ConversationObject: ResponseEncodable, Sendable {
    let object = "conversation"
    var id: String
    @Nullable var title: String?
    @Nullable var model: String?
    var createdAt: Int64
    var updatedAt: Int64
    var updatedAtMilliseconds: Int64

    init(_ conversation: Conversation) {
        id = conversation.id
        title = conversation.title
        model = conversation.model
        createdAt = conversation.createdAt / 1000
        updatedAt = conversation.updatedAt / 1000
        updatedAtMilliseconds = conversation.updatedAt
    }

    enum CodingKeys: String, CodingKey {
        case object, id, title, model, createdAt = "created_at", updatedAt = "updated_at", updatedAtMilliseconds = "updated_at_ms"
    }
}

/// One page of `GET /v1/conversations`, most recently updated first.
struct ConversationList: ResponseEncodable, Sendable {
    let object = "list"
    var data: [ConversationObject]
    var hasMore: Bool
    /// Pass as `before` for the next page; null on a page that is not full.
    @Nullable var nextBefore: Int64?

    enum CodingKeys: String, CodingKey {
        case object, data, hasMore = "has_more", nextBefore = "next_before"
    }
}

/// A stored message. The keys of tool calls, tool results and named participants are there only
/// when the message has them.
struct MessageObject: ResponseEncodable, Sendable {
    let object = "conversation.message"
    var id: String
    var role: String
    /// The text, or the content parts when the message had more than text.
    var content: JSONValue
    @Nullable var reasoningContent: String?
    @Nullable var model: String?
    var status: MessageStatus
    var metadata: [String: JSONValue]
    var createdAt: Int64
    var usage: Usage?
    var toolCalls: JSONValue?
    var toolCallID: String?
    var name: String?

    init(_ message: StoredMessage) {
        id = message.id
        role = message.role
        content = message.parts ?? .string(message.content)
        reasoningContent = message.reasoning
        model = message.model
        status = message.status
        metadata = message.metadata
        createdAt = message.createdAt / 1000
        usage = message.usage
        toolCalls = message.toolCalls
        toolCallID = message.toolCallID
        name = message.name
    }

    enum CodingKeys: String, CodingKey {
        case object, id, role, content, reasoningContent = "reasoning_content", model, status, metadata, createdAt = "created_at"
        case usage, toolCalls = "tool_calls", toolCallID = "tool_call_id", name
    }
}

/// `GET /v1/conversations/{id}/history`: every message, oldest first.
struct MessageList: ResponseEncodable, Sendable {
    let object = "list"
    var conversationID: String
    var data: [MessageObject]

    enum CodingKeys: String, CodingKey {
        case object, conversationID = "conversation_id", data
    }
}

/// The answer to `DELETE /v1/conversations/{id}`.
struct ConversationDeleted: ResponseEncodable, Sendable {
    let object = "conversation.deleted"
    var id: String
    let deleted = true
}

/// `PATCH /v1/conversations/{id}`: the new title; null removes it.
struct ConversationRenameRequest: Decodable {
    var title: String?

    enum CodingKeys: String, CodingKey {
        case title
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        guard body.contains(.title) else { throw ChorusRequestDecoder.missingParameter("title") }
        title = try body.string(.title, maxLength: 500, orNull: true)
    }
}
