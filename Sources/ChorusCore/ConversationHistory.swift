extension StoredMessage {
    /// A message the client sent, to keep in a conversation. An assistant message that the client
    /// sends back was not produced by this turn, so it gets no turn id: a turn's one assistant
    /// message (a unique index) is the answer it produces.
    public init(client message: ChatMessage, ownerID: String, turnID: String, now: Int64) {
        self.init(
            id: Identifier.ordered("msg_"), conversationID: "", ownerID: ownerID, role: message.role,
            content: message.text, parts: message.hasNonTextParts ? message.content : nil,
            // Whole calls as OpenAI defines them: an SDK's accumulated stream may add `index`.
            toolCalls: message.toolCalls.map { .array(ToolCall.calls(from: $0).map(\.json)) },
            toolCallID: message.toolCallID, name: message.name,
            turnID: message.role == "assistant" ? nil : turnID, createdAt: now, updatedAt: now)
    }

    /// The message as an OpenAI request message.
    public var openAIMessage: JSONValue {
        var object: [String: JSONValue] = ["role": .string(role)]
        if let parts {
            object["content"] = parts
        } else if role == "assistant", content.isEmpty, toolCalls != nil {
            object["content"] = .null
        } else {
            object["content"] = .string(content)
        }
        if let name { object["name"] = .string(name) }
        if let toolCalls { object["tool_calls"] = toolCalls }
        if let toolCallID { object["tool_call_id"] = .string(toolCallID) }
        return .object(object)
    }
}

/// A stored conversation as the `messages` of the next upstream request.
public enum ConversationHistory {
    /// Where a model answered one user message more than once (regenerated), only its latest
    /// answer (of each model) stays: the others were replaced.
    public static func latestAnswers(_ history: [StoredMessage]) -> [StoredMessage] {
        var kept: [StoredMessage] = []
        for message in history {
            if message.role == "assistant", message.toolCalls == nil,
               let previous = kept.lastIndex(where: { $0.role != "assistant" || $0.model == message.model }),
               kept[previous].role == "assistant", kept[previous].toolCalls == nil {
                kept.remove(at: previous)
            }
            kept.append(message)
        }
        return kept
    }

    /// The messages in order, with only the latest of regenerated answers, leaving out what would
    /// make a valid request invalid: answers that
    /// failed before any text, the unfinished tool calls of an answer that did not complete, tool
    /// calls with no result in the history and results with no call (a history cut by
    /// `history_messages`, or a client that moved on without answering the calls).
    public static func upstreamMessages(_ history: [StoredMessage]) -> [JSONValue] {
        var kept = latestAnswers(history).map { message -> StoredMessage in
            var message = message
            if message.role == "assistant", message.status != .complete { message.toolCalls = nil }
            return message
        }
        let answered = Set(kept.compactMap { $0.role == "tool" ? $0.toolCallID : nil })
        var called = Set<String>()
        for index in kept.indices where kept[index].role == "assistant" {
            guard let calls = kept[index].toolCalls?.arrayValue else { continue }
            let remaining = calls.filter { answered.contains($0["id"]?.stringValue ?? "") }
            kept[index].toolCalls = remaining.isEmpty ? nil : .array(remaining)
            called.formUnion(remaining.compactMap { $0["id"]?.stringValue })
        }
        kept.removeAll { message in
            switch message.role {
            case "tool": !called.contains(message.toolCallID ?? "")
            case "assistant": message.content.isEmpty && message.parts == nil && message.toolCalls == nil
            default: false
            }
        }
        return kept.map(\.openAIMessage)
    }
}
