public import ChorusCore
public import ChorusStore

/// `conversation.export`: a conversation as Markdown or JSON.
public struct ConversationExportHandler<Store: ConversationStore>: TaskHandler {
    public let type = "conversation.export"
    let store: Store

    public init(store: Store) {
        self.store = store
    }

    public func validate(params: JSONValue) throws {
        guard params["conversation_id"]?.stringValue != nil else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'params.conversation_id'.", param: "params.conversation_id", code: "missing_required_parameter")
        }
        if let format = params["format"], !["markdown", "json"].contains(format.stringValue ?? "") {
            throw ChorusError.invalidRequest(message: "'params.format' must be 'markdown' or 'json'.", param: "params.format", code: "invalid_value")
        }
    }

    public func run(_ context: TaskRunContext) async throws -> JSONValue {
        let id = context.task.params["conversation_id"]?.stringValue ?? ""
        guard let conversation = try await store.conversation(id: id, ownerID: context.task.ownerID) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        let messages = try await store.messages(conversationID: id, ownerID: context.task.ownerID)
        try await context.progress(current: 0, total: messages.count)
        let format = context.task.params["format"]?.stringValue ?? "markdown"
        if format == "json" {
            let items: [JSONValue] = messages.map { message in
                var item: [String: JSONValue] = [
                    "role": .string(message.role), "content": .string(message.content),
                    "reasoning_content": message.reasoning.map(JSONValue.string) ?? .null, "model": message.model.map(JSONValue.string) ?? .null,
                ]
                if let calls = message.toolCalls { item["tool_calls"] = calls }
                if let id = message.toolCallID { item["tool_call_id"] = .string(id) }
                return .object(item)
            }
            try await context.progress(current: messages.count, total: messages.count)
            return .object(["format": .string("json"), "conversation_id": .string(id), "messages": .array(items)])
        }
        var markdown = "# \(conversation.title ?? "Conversation \(id)")\n"
        for (index, message) in messages.enumerated() {
            markdown += "\n## \(message.role)\(message.model.map { " (\($0))" } ?? "")\n\n"
            if let reasoning = message.reasoning, !reasoning.isEmpty {
                markdown += "<details><summary>Thinking</summary>\n\n\(reasoning)\n\n</details>\n\n"
            }
            markdown += message.content + "\n"
            try await context.progress(current: index + 1, total: messages.count)
        }
        return .object(["format": .string("markdown"), "conversation_id": .string(id), "content": .string(markdown)])
    }
}
