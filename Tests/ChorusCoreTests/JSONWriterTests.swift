import ChorusCore
import Foundation
import Testing

@Suite struct JSONWriterTests {
    @Test func escapesAndRoundTrips() throws {
        let tricky = "quote \" backslash \\ newline \n tab \t bell \u{07} emoji 🎵 slash /"
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("s"); writer.string(tricky)
        writer.key("n"); writer.null()
        writer.key("a"); writer.beginArray(); writer.int(1); writer.bool(false); writer.endArray()
        writer.endObject()
        let decoded = try JSONValue.parse(writer.bytes)
        #expect(decoded == .object(["s": .string(tricky), "n": .null, "a": .array([.int(1), .bool(false)])]))
    }

    @Test func chunkCarriesNullsTheSchemaRequires() throws {
        let envelope = CompletionEnvelope(id: "chatcmpl-1", created: 1, model: "m", conversationID: "conv_1")
        let chunk = try JSONValue.parse(envelope.chunk(.content("hi"), includeUsageField: true))
        let choice = chunk["choices"]?.arrayValue?.first
        #expect(choice?["logprobs"] == .null)
        #expect(choice?["finish_reason"] == .null)
        #expect(choice?["delta"]?["content"] == .string("hi"))
        #expect(chunk["usage"] == .null)
        #expect(chunk["conversation_id"] == .string("conv_1"))
    }

    /// Every chunk of a stream starts with the same members (encoded once per stream), escaped.
    @Test func chunksStartWithTheStreamsMembers() throws {
        let envelope = CompletionEnvelope(id: "chatcmpl-1", created: 1_700_000_000, model: "m\"x", conversationID: nil)
        let first = String(decoding: envelope.chunk(.role, includeUsageField: false), as: UTF8.self)
        #expect(first == #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m\"x","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#)
        let last = String(decoding: envelope.chunk(.finish("length"), includeUsageField: false), as: UTF8.self)
        #expect(last == #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m\"x","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}"#)

        let stored = CompletionEnvelope(id: "chatcmpl-2", created: 2, model: "m", conversationID: "conv_1")
        let usage = try JSONValue.parse(stored.usageChunk(Usage(promptTokens: 3, completionTokens: 4)))
        #expect(usage["id"] == .string("chatcmpl-2") && usage["object"] == .string("chat.completion.chunk"))
        #expect(usage["created"] == .int(2) && usage["model"] == .string("m") && usage["conversation_id"] == .string("conv_1"))
        #expect(usage["choices"] == .array([]) && usage["usage"]?["total_tokens"] == .int(7))
        // The whole completion keeps its own object name.
        #expect(try JSONValue.parse(stored.completion(CompletionOutput()))["object"] == .string("chat.completion"))
    }

    @Test func unknownFinishReasonsBecomeStop() {
        #expect(CompletionEnvelope.openAIFinishReason("eos") == "stop")
        #expect(CompletionEnvelope.openAIFinishReason("length") == "length")
        #expect(CompletionEnvelope.openAIFinishReason(nil) == "stop")
    }
}
