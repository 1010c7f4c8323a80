import Foundation
import Testing

@testable import ChorusProviders

/// `StreamChunkDecoder` (JSONParser-based) against what `JSONDecoder` made of the same chunks.
/// (Here because ChorusProviders has no test target of its own.)
@Suite struct StreamChunkDecoderTests {
    /// What `JSONDecoder` gives for a chunk, as text (nil when it throws).
    private func foundation(_ text: String) -> StreamChunk? {
        try? JSONDecoder().decode(StreamChunk.self, from: Data(text.utf8))
    }

    private func parser(_ text: String) -> StreamChunk? {
        var decoder = StreamChunkDecoder()
        return try? decoder.decode(text)
    }

    static let acceptedChunks = [
        // Content, as OpenAI sends it (first chunk with the role, then deltas).
        #"{"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0aa8d3e20b","choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        #"{"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_0aa8d3e20b","choices":[{"index":0,"delta":{"content":" Hello \"world\" \u00e9 😀\n"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        // Reasoning (DeepSeek / DashScope `reasoning_content`, vLLM / OpenRouter `reasoning`).
        #"{"id":"1","object":"chat.completion.chunk","created":1,"model":"deepseek-reasoner","choices":[{"index":0,"delta":{"content":null,"reasoning_content":"Let me think"},"logprobs":null,"finish_reason":null}]}"#,
        #"{"id":"1","object":"chat.completion.chunk","created":1,"model":"qwen","choices":[{"index":0,"delta":{"reasoning":"hmm","content":""},"finish_reason":null}]}"#,
        // The finish chunk, then the usage-only chunk OpenAI sends with include_usage.
        #"{"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}"#,
        #"{"id":"chatcmpl-B1","object":"chat.completion.chunk","created":1735000000,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":18,"completion_tokens":9,"total_tokens":27,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
        // Finish reason and usage in one chunk (vLLM, llama.cpp), counts written as floats.
        #"{"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":"length"}],"usage":{"prompt_tokens":5.0,"completion_tokens":1e1}}"#,
        // A mid-stream error object.
        #"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#,
        #"{"error":{"type":"overloaded"}}"#,
        // Odd but valid: nulls everywhere, no choices, unknown fields, whitespace.
        #"{"choices":null,"usage":null,"error":null}"#,
        #"{"choices":[{"delta":null,"finish_reason":null}]}"#,
        "{}",
        " {\n \"choices\" : [ { \"delta\" : { \"content\" : \"x\" } } , { \"delta\" : { \"content\" : \"second\" } } ] } ",
        #"{"choices":[{"delta":{"content":"a","tool_calls":[{"index":0,"id":"call_1","function":{"name":"f","arguments":"{\"x\":1}"}}]}}]}"#,
        // Tool calls, logprobs, refusal and usage details, relayed as they came.
        #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"ty\":"}}]},"logprobs":{"content":[{"token":"a","logprob":-0.5,"bytes":[97],"top_logprobs":[]}],"refusal":null},"finish_reason":null}],"system_fingerprint":"fp_1","service_tier":"default"}"#,
        #"{"choices":[{"index":0,"delta":{"refusal":"I can't"},"finish_reason":null}],"usage":{"prompt_tokens":1,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1}}}"#,
    ]

    @Test(arguments: acceptedChunks)
    func readsChunksAsJSONDecoderDid(_ text: String) throws {
        let expected = try #require(foundation(text), "JSONDecoder rejected the chunk")
        #expect(parser(text) == expected)
    }

    @Test func readsTheFieldsTheProviderUses() throws {
        var decoder = StreamChunkDecoder()
        let content = try decoder.decode(Self.acceptedChunks[1])
        #expect(content.choices?.first?.delta?.content == " Hello \"world\" é 😀\n")
        #expect(content.choices?.first?.finish_reason == nil)
        #expect(content.usage == nil && content.error == nil)

        let reasoning = try decoder.decode(Self.acceptedChunks[2])
        #expect(reasoning.choices?.first?.delta?.reasoning_content == "Let me think")
        #expect(reasoning.choices?.first?.delta?.content == nil)
        #expect(try decoder.decode(Self.acceptedChunks[3]).choices?.first?.delta?.reasoning == "hmm")

        let finish = try decoder.decode(Self.acceptedChunks[6])
        #expect(finish.choices?.first?.finish_reason == "length")
        #expect(finish.usage?.prompt_tokens == 5)
        #expect(finish.usage?.completion_tokens == 10)

        let usage = try decoder.decode(Self.acceptedChunks[5])
        #expect(usage.choices?.isEmpty == true)
        #expect(usage.usage?.prompt_tokens == 18 && usage.usage?.completion_tokens == 9)

        let error = try decoder.decode(Self.acceptedChunks[7])
        #expect(error.error?.message == "The server had an error while processing your request.")
        #expect(try decoder.decode(Self.acceptedChunks[8]).error != nil)
    }

    static let rejectedChunks = [
        // Not an object: the provider logs these and skips them.
        "[]", #""text""#, "42", "null", "true", #"[{"choices":[]}]"#,
        // Not JSON.
        "", "{", "data: {}", #"{"choices":[{"delta":{"content":"x"}}]"#, "{\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}",
        // Fields of the wrong type.
        #"{"choices":{}}"#, #"{"choices":[1]}"#, #"{"choices":[null]}"#, #"{"choices":[{"delta":"x"}]}"#,
        #"{"choices":[{"delta":{"content":5}}]}"#, #"{"choices":[{"delta":{"reasoning_content":true}}]}"#,
        #"{"choices":[{"finish_reason":1}]}"#, #"{"choices":[{"delta":{}},{"delta":{"content":[]}}]}"#,
        #"{"usage":{"prompt_tokens":"5"}}"#, #"{"usage":{"prompt_tokens":1.5}}"#, #"{"usage":{"completion_tokens":1e30}}"#, #"{"usage":[]}"#,
        #"{"error":"boom"}"#, #"{"error":{"message":7}}"#,
    ]

    @Test(arguments: rejectedChunks)
    func rejectsChunksJSONDecoderRejected(_ text: String) {
        #expect(foundation(text) == nil, "JSONDecoder accepted the chunk")
        #expect(parser(text) == nil)
    }
}
