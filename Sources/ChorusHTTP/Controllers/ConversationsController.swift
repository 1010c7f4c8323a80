import ChorusCore
import ChorusStore
import Hummingbird

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

    @Sendable func list(_ request: Request, context: ChorusRequestContext) async throws -> ConversationList {
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
        // `q`: a part of the title, any case (the chat page's search).
        let search = request.uri.queryParameters["q"].map(String.init).flatMap { $0.isEmpty ? nil : String($0.prefix(200)) }
        let page = try await store.conversations(ownerID: context.ownerID, limit: limit + 1, updatedBefore: before, titleContains: search)
        let items = page.prefix(limit)
        return ConversationList(
            data: items.map(ConversationObject.init), hasMore: page.count > limit,
            nextBefore: items.count == limit ? items.last?.updatedAt : nil)
    }

    @Sendable func show(_ request: Request, context: ChorusRequestContext) async throws -> ConversationObject {
        ConversationObject(try await find(context))
    }

    @Sendable func history(_ request: Request, context: ChorusRequestContext) async throws -> MessageList {
        let conversation = try await find(context)
        let messages = try await store.messages(conversationID: conversation.id, ownerID: context.visibleOwner)
        return MessageList(conversationID: conversation.id, data: messages.map(MessageObject.init))
    }

    @Sendable func update(_ request: Request, context: ChorusRequestContext) async throws -> ConversationObject {
        let id = try context.parameters.require("id")
        let body = try await request.decode(as: ConversationRenameRequest.self, context: context.bodyLimit(maxBodyBytes))
        guard let updated = try await store.renameConversation(id: id, ownerID: context.visibleOwner, title: body.title) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        return ConversationObject(updated)
    }

    @Sendable func delete(_ request: Request, context: ChorusRequestContext) async throws -> ConversationDeleted {
        let id = try context.parameters.require("id")
        guard try await store.deleteConversation(id: id, ownerID: context.visibleOwner) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        return ConversationDeleted(id: id)
    }

    private func find(_ context: ChorusRequestContext) async throws -> Conversation {
        let id = try context.parameters.require("id")
        guard let conversation = try await store.conversation(id: id, ownerID: context.visibleOwner) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        return conversation
    }
}
