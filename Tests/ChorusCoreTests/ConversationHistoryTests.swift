import ChorusCore
import Testing

@Suite struct ConversationHistoryTests {
    private func message(_ role: String, _ content: String = "", toolCalls: [String] = [], toolCallID: String? = nil, status: MessageStatus = .complete) -> StoredMessage {
        StoredMessage(
            id: "msg", conversationID: "conv", ownerID: "o", role: role, content: content,
            toolCalls: toolCalls.isEmpty ? nil : .array(toolCalls.map { ToolCall(index: 0, id: $0, name: "f", arguments: "{}").json }),
            toolCallID: toolCallID, status: status, createdAt: 0, updatedAt: 0)
    }

    private func roles(_ messages: [JSONValue]) -> [String] {
        messages.compactMap { $0["role"]?.stringValue }
    }

    /// A whole tool round trip goes back as OpenAI expects it: the calls, then their results.
    @Test func aToolRoundTripGoesBackWhole() {
        let upstream = ConversationHistory.upstreamMessages([
            message("user", "weather?"), message("assistant", toolCalls: ["call_1", "call_2"]),
            message("tool", "sunny", toolCallID: "call_1"), message("tool", "12:00", toolCallID: "call_2"),
            message("assistant", "It is sunny."),
        ])
        #expect(roles(upstream) == ["user", "assistant", "tool", "tool", "assistant"])
        #expect(upstream[1]["content"] == .null)
        #expect(upstream[1]["tool_calls"]?.arrayValue?.count == 2)
        #expect(upstream[2]["tool_call_id"] == .string("call_1"))
        #expect(upstream[2]["content"] == .string("sunny"))
    }

    /// History cut in the middle of a round trip, calls never answered, an answer that failed
    /// before any text: none of it may make the next request invalid.
    @Test func unmatchedCallsAndResultsAreLeftOut() {
        let upstream = ConversationHistory.upstreamMessages([
            message("tool", "orphan", toolCallID: "call_0"),
            message("user", "a"), message("assistant", "partly", toolCalls: ["call_1"]),
            message("user", "b"), message("assistant", status: .partial),
            message("user", "c"), message("assistant", "text", toolCalls: ["call_2"], status: .partial),
            message("tool", "late", toolCallID: "call_2"),
        ])
        #expect(roles(upstream) == ["user", "assistant", "user", "user", "assistant"])
        #expect(upstream[1]["tool_calls"] == nil && upstream[1]["content"] == .string("partly"))
        #expect(upstream[4]["tool_calls"] == nil && upstream[4]["content"] == .string("text"))
    }

    /// A resent assistant message is not the turn's answer: it carries no turn id.
    @Test func clientAssistantMessagesHaveNoTurn() throws {
        let request = try ChatRequest(json: try JSONValue.parse(Array(#"{"model":"m","messages":[{"role":"user","content":"Hi","name":"ann"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"joke"}]}"#.utf8)))
        let stored = request.messages.map { StoredMessage(client: $0, ownerID: "o", turnID: "req_1", now: 1) }
        #expect(stored.map(\.turnID) == ["req_1", nil, "req_1"])
        #expect(stored[0].name == "ann")
        #expect(stored[0].openAIMessage["name"] == .string("ann"))
    }
}

@Suite struct LatestAnswersTests {
    private func message(_ role: String, _ content: String, model: String? = nil) -> StoredMessage {
        StoredMessage(id: content, conversationID: "c", ownerID: "o", role: role, content: content, model: model, createdAt: 0, updatedAt: 0)
    }

    /// Each model's answers to one user message: the latest stays, another model's are untouched.
    @Test func regeneratedAnswersReplaceTheEarlierOnes() {
        let history = [
            message("user", "q1"), message("assistant", "a1", model: "a"), message("assistant", "b1", model: "b"),
            message("assistant", "a2", model: "a"), message("user", "q2"), message("assistant", "a3", model: "a"),
        ]
        #expect(ConversationHistory.latestAnswers(history).map(\.content) == ["q1", "b1", "a2", "q2", "a3"])
    }
}
