import ChorusCore
import ChorusStore
import Foundation
import Hummingbird
import NIOCore

/// `/v1/conversations`: list, read, history, rename, delete — within the caller's own rows (any row for `admin:data`).
struct ConversationsController<Store: ConversationStore>: Sendable {
    let store: Store
    let maxBodyBytes: Int

    var endpoints: RouteCollection<ChorusRequestContext> {
        let routes = RouteCollection(context: ChorusRequestContext.self)
        routes.get(use: list)
        routes.get(":id", use: show)
        routes.get(":id/history", use: history)
        routes.patch(":id", use: update)
        routes.delete(":id", use: delete)
        return routes
    }

    @Sendable func list(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let limit = try request.uri.queryParameters["limit"].map { value -> Int in
            guard let limit = Int(value), (1...200).contains(limit) else {
                throw ChorusError.invalidRequest(message: "'limit' must be an integer between 1 and 200.", param: "limit", code: "invalid_value")
            }
            return limit
        } ?? 20
        let before = try request.uri.queryParameters["before"].map { value -> Int64 in
            guard let before = Int64(value) else {
                throw ChorusError.invalidRequest(message: "'before' must be a timestamp in milliseconds.", param: "before", code: "invalid_value")
            }
            return before
        }
        let page = try await store.conversations(ownerID: context.ownerID, limit: limit + 1, updatedBefore: before)
        let items = page.prefix(limit)
        return try json(.object([
            "object": .string("list"),
            "data": .array(items.map(Self.render)),
            "has_more": .bool(page.count > limit),
            // Pass as `before` for the next page.
            "next_before": items.count == limit ? items.last.map { .int(Int($0.updatedAt)) } ?? .null : .null,
        ]))
    }

    @Sendable func show(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let conversation = try await find(context)
        return try json(Self.render(conversation))
    }

    @Sendable func history(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let conversation = try await find(context)
        let messages = try await store.messages(conversationID: conversation.id, ownerID: context.visibleOwner)
        return try json(.object([
            "object": .string("list"),
            "conversation_id": .string(conversation.id),
            "data": .array(messages.map(Self.render)),
        ]))
    }

    @Sendable func update(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let body = try await request.body.collect(upTo: maxBodyBytes)
        let json = try JSONValue.parse(body.readableBytesView)
        guard case .object(let fields) = json else {
            throw ChorusError.invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type")
        }
        guard let titleValue = fields["title"] else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'title'.", param: "title", code: "missing_required_parameter")
        }
        let title: String?
        switch titleValue {
        case .null: title = nil
        case .string(let value) where value.count <= 500: title = value
        default:
            throw ChorusError.invalidRequest(message: "'title' must be a string of at most 500 characters or null.", param: "title", code: "invalid_type")
        }
        guard let updated = try await store.renameConversation(id: id, ownerID: context.visibleOwner, title: title) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        return try self.json(Self.render(updated))
    }

    @Sendable func delete(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard try await store.deleteConversation(id: id, ownerID: context.visibleOwner) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        return try json(.object(["id": .string(id), "object": .string("conversation.deleted"), "deleted": .bool(true)]))
    }

    private func find(_ context: ChorusRequestContext) async throws -> Conversation {
        let id = try context.parameters.require("id")
        guard let conversation = try await store.conversation(id: id, ownerID: context.visibleOwner) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        return conversation
    }

    private func json(_ value: JSONValue) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try value.encoded())))
    }

    static func render(_ conversation: Conversation) -> JSONValue {
        .object([
            "id": .string(conversation.id),
            "object": .string("conversation"),
            "title": conversation.title.map(JSONValue.string) ?? .null,
            "model": conversation.model.map(JSONValue.string) ?? .null,
            "created_at": .int(Int(conversation.createdAt / 1000)),
            "updated_at": .int(Int(conversation.updatedAt / 1000)),
            "updated_at_ms": .int(Int(conversation.updatedAt)),
        ])
    }

    static func render(_ message: StoredMessage) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(message.id),
            "object": .string("conversation.message"),
            "role": .string(message.role),
            "content": message.parts ?? .string(message.content),
            "reasoning_content": message.reasoning.map(JSONValue.string) ?? .null,
            "model": message.model.map(JSONValue.string) ?? .null,
            "status": .string(message.status.rawValue),
            "metadata": .object(message.metadata),
            "created_at": .int(Int(message.createdAt / 1000)),
        ]
        if let usage = message.usage { object["usage"] = usage.json }
        if let calls = message.toolCalls { object["tool_calls"] = calls }
        if let id = message.toolCallID { object["tool_call_id"] = .string(id) }
        if let name = message.name { object["name"] = .string(name) }
        return .object(object)
    }
}
