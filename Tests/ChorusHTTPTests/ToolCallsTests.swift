import ChorusCore
import ChorusRuntime
import ChorusStore
import FakeUpstreamKit
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import ChorusHTTP

/// Tool calls through Chorus: relayed as the upstream sent them, stored, and sent back in history.
@Suite struct ToolCallsTests {
    static let tools = #"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#

    static func request(_ messages: String, stream: Bool, conversationID: String? = nil) -> String {
        let conversation = conversationID.map { #","conversation_id":"\#($0)""# } ?? ""
        return #"{"model":"fake","stream":\#(stream),"tools":\#(tools),"tool_choice":"auto","messages":\#(messages)\#(conversation)}"#
    }

    /// The calls of a response: whole ones from a completion, or the deltas of a stream joined.
    static func calls(_ response: TestResponse, stream: Bool, _ h: Harness) throws -> (calls: [ToolCall], finish: String?, deltas: [JSONValue]) {
        guard stream else {
            let choice = try h.json(response)["choices"]?.arrayValue?.first
            #expect(choice?["message"]?["content"] == .null)
            return (ToolCall.calls(from: choice?["message"]?["tool_calls"]), choice?["finish_reason"]?.stringValue, [])
        }
        let events = try h.events(response)
        #expect(events.last == "[DONE]")
        var output = CompletionOutput()
        var deltas: [JSONValue] = []
        var finish: String?
        for event in events.dropLast() {
            let choice = try JSONValue.parse(Array(event.utf8))["choices"]?.arrayValue?.first
            if let delta = choice?["delta"]?["tool_calls"] {
                deltas.append(delta)
                output.apply(.toolCalls(delta))
            }
            if let reason = choice?["finish_reason"]?.stringValue { finish = reason }
        }
        return (output.toolCalls, finish, deltas)
    }

    @Test(arguments: [false, true])
    func aToolRoundTripThroughAStoredConversation(stream: Bool) async throws {
        try await Harness.run { h in
            let first = try await h.post("/v1/chat/completions", json: Self.request(#"[{"role":"user","content":"weather in Paris?"}]"#, stream: stream))
            #expect(first.status == .ok)
            let (calls, finish, deltas) = try Self.calls(first, stream: stream, h)
            #expect(finish == "tool_calls")
            #expect(calls.count == 1)
            #expect(calls.first?.name == "get_weather" && calls.first?.arguments == #"{"city":"city_0"}"#)
            if stream {
                // The arguments came in fragments, relayed one chunk each as the upstream sent them.
                #expect(deltas.count > 2)
                #expect(deltas.first?.arrayValue?.first?["function"]?["arguments"] == .string(""))
            }
            // The upstream got the tools as sent.
            let sent = try JSONValue.parse(Array(try #require(await h.stats.lastRequestBodies(1).first).utf8))
            #expect(sent["tools"] == (try JSONValue.parse(Array(Self.tools.utf8))))
            #expect(sent["tool_choice"] == .string("auto"))

            let conversationID = try #require(first.headers[HTTPField.Name("X-Conversation-Id")!])
            let stored = try await h.assistantMessages(conversationID)
            #expect(stored.count == 1 && stored.first?.status == .complete && stored.first?.content == "")
            #expect(ToolCall.calls(from: stored.first?.toolCalls) == calls)

            // The tool's result, in the same conversation: the history goes back with the call.
            let callID = try #require(calls.first?.id)
            let result = #"[{"role":"tool","tool_call_id":"\#(callID)","content":"sunny"}]"#
            let second = try await h.post("/v1/chat/completions", json: Self.request(result, stream: stream, conversationID: conversationID))
            #expect(second.status == .ok)
            #expect(try StatelessChatTests.answer(second, stream: stream, h) == "tool results: \(callID)=sunny")
            let resent = try JSONValue.parse(Array(try #require(await h.stats.lastRequestBodies(1).first).utf8))
            let messages = try #require(resent["messages"]?.arrayValue)
            #expect(messages.compactMap { $0["role"]?.stringValue } == ["user", "assistant", "tool"])
            #expect(ToolCall.calls(from: messages[1]["tool_calls"]) == calls)
            #expect(messages[1]["content"] == .null)
            #expect(messages[2]["tool_call_id"] == .string(callID))

            let history = try h.json(try await h.get("/v1/conversations/\(conversationID)/history"))["data"]?.arrayValue ?? []
            #expect(history.compactMap { $0["role"]?.stringValue } == ["user", "assistant", "tool", "assistant"])
            #expect(history[1]["tool_calls"]?.arrayValue?.count == 1)
            #expect(history[2]["tool_call_id"] == .string(callID))
        }
    }

    @Test func aQueuedTaskReportsItsToolCalls() async throws {
        try await Harness.run { h in
            let body = #"{"messages":[{"role":"user","content":"weather? [[fake tool_calls=2]]"}],"models":["fake"],"tools":\#(Self.tools)}"#
            let submitted = try h.json(try await h.post("/v1/batches", json: body))
            let taskID = try #require(submitted["task_ids"]?.arrayValue?.first?.stringValue)
            let task = try await h.waitForTask(taskID)
            #expect(task["state"] == .string("SUCCESS"))
            #expect(task["result"]?["finish_reason"] == .string("tool_calls"))
            let calls = ToolCall.calls(from: task["result"]?["tool_calls"])
            #expect(calls.map(\.name) == ["get_weather", "get_weather"])
            let events = try await h.taskEvents(taskID)
            #expect(events.contains { $0.1["type"] == .string("tool_calls") && $0.1["data"]?.arrayValue != nil })

            // The results, as a second batch in the conversation: the worker rebuilds the history.
            let conversationID = try #require(submitted["conversation_id"]?.stringValue)
            let results = calls.map { #"{"role":"tool","tool_call_id":"\#($0.id)","content":"ok-\#($0.id)"}"# }.joined(separator: ",")
            let next = try h.json(try await h.post("/v1/batches", json: #"{"messages":[\#(results)],"models":["fake"],"conversation_id":"\#(conversationID)","tools":\#(Self.tools)}"#))
            let answer = try await h.waitForTask(try #require(next["task_ids"]?.arrayValue?.first?.stringValue))
            #expect(answer["result"]?["content"] == .string("tool results: " + calls.map { "\($0.id)=ok-\($0.id)" }.joined(separator: "; ")))
        }
    }
}
