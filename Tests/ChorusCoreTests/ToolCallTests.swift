import ChorusCore
import Testing

@Suite struct ToolCallTests {
    private func parse(_ json: String) throws -> JSONValue {
        try JSONValue.parse(Array(json.utf8))
    }

    /// Streamed deltas, as OpenAI sends them for two parallel calls, join into whole calls.
    @Test func deltasJoinIntoWholeCallsByIndex() throws {
        let deltas = [
            #"[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]"#,
            #"[{"index":0,"function":{"arguments":"{\"ci"}}]"#,
            #"[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]"#,
            #"[{"index":0,"function":{"arguments":"ty\":\"Paris\"}"}}]"#,
        ]
        var output = CompletionOutput()
        for delta in deltas { output.apply(.toolCalls(try parse(delta))) }
        #expect(output.toolCalls == [
            ToolCall(index: 0, id: "call_a", name: "get_weather", arguments: #"{"city":"Paris"}"#),
            ToolCall(index: 1, id: "call_b", name: "get_time", arguments: "{}"),
        ])
        #expect(output.started, "a tool call is output: a failure after it is not retried")
        #expect(output.toolCalls[0].json == (try parse(#"{"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}"#)))
    }

    /// A non-streamed message's calls have no index: their position numbers them.
    @Test func wholeCallsWithoutIndexKeepTheirOrder() throws {
        let calls = ToolCall.calls(from: try parse(#"[{"id":"x","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"y","type":"function","function":{"name":"g","arguments":"[1]"}}]"#))
        #expect(calls.map(\.id) == ["x", "y"])
        #expect(calls.map(\.arguments) == ["{}", "[1]"])
    }

    @Test func completionCarriesToolCallsWithNullContent() throws {
        var output = CompletionOutput()
        output.apply(.toolCalls(try parse(#"[{"index":0,"id":"call_a","type":"function","function":{"name":"f","arguments":"{}"}}]"#)))
        output.apply(.finish("tool_calls"))
        output.apply(.metadata(ResponseMetadata(systemFingerprint: "fp_1", serviceTier: "default")))
        let envelope = CompletionEnvelope(id: "chatcmpl-1", created: 1, model: "m", conversationID: nil)
        let body = try JSONValue.parse(envelope.completion(output))
        let choice = try #require(body["choices"]?.arrayValue?.first)
        #expect(choice["message"]?["content"] == .null)
        #expect(choice["message"]?["refusal"] == .null)
        #expect(choice["message"]?["tool_calls"]?.arrayValue?.first?["function"]?["name"] == .string("f"))
        #expect(choice["finish_reason"] == .string("tool_calls"))
        #expect(body["system_fingerprint"] == .string("fp_1") && body["service_tier"] == .string("default"))
        #expect(body["conversation_id"] == nil)
    }

    @Test func chunksRelayToolCallsLogprobsAndMetadata() throws {
        let envelope = CompletionEnvelope(id: "chatcmpl-1", created: 1, model: "m", conversationID: "conv_1")
        let metadata = CompletionEnvelope.metadataMembers(ResponseMetadata(systemFingerprint: "fp_1"))
        let calls = try parse(#"[{"index":0,"function":{"arguments":"{\"a\""}}]"#)
        let chunk = try JSONValue.parse(envelope.chunk(.toolCalls(calls), includeUsageField: false, metadata: metadata))
        #expect(chunk["choices"]?.arrayValue?.first?["delta"]?["tool_calls"] == calls)
        #expect(chunk["system_fingerprint"] == .string("fp_1"))
        // A chunk's logprobs always has both members the schema requires.
        let logprobs = try parse(#"{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[]}]}"#)
        let withLogprobs = try JSONValue.parse(envelope.chunk(.logprobs(logprobs), includeUsageField: true))
        #expect(withLogprobs["choices"]?.arrayValue?.first?["logprobs"]?["refusal"] == .null)
        #expect(withLogprobs["choices"]?.arrayValue?.first?["logprobs"]?["content"]?.arrayValue?.count == 1)
        #expect(withLogprobs["choices"]?.arrayValue?.first?["delta"] == .object([:]))
        #expect(CompletionEnvelope.metadataMembers(ResponseMetadata()).isEmpty)
    }

    @Test func logprobsAccumulateForTheWholeMessage() throws {
        var output = CompletionOutput()
        output.apply(.content("a"))
        output.apply(.logprobs(try parse(#"{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[]}],"refusal":null}"#)))
        output.apply(.content("b"))
        output.apply(.logprobs(try parse(#"{"content":[{"token":"b","logprob":-1.5,"bytes":[98],"top_logprobs":[]}],"refusal":null}"#)))
        let body = try JSONValue.parse(CompletionEnvelope(id: "c", created: 1, model: "m", conversationID: nil).completion(output))
        let logprobs = body["choices"]?.arrayValue?.first?["logprobs"]
        #expect(logprobs?["content"]?.arrayValue?.compactMap { $0["token"]?.stringValue } == ["a", "b"])
        #expect(logprobs?["refusal"] == .null)
    }
}
