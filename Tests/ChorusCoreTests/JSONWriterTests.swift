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
        let chunk = try JSONValue.parse(envelope.chunk(content: "hi", includeUsageField: true))
        let choice = chunk["choices"]?.arrayValue?.first
        #expect(choice?["logprobs"] == .null)
        #expect(choice?["finish_reason"] == .null)
        #expect(choice?["delta"]?["content"] == .string("hi"))
        #expect(chunk["usage"] == .null)
        #expect(chunk["conversation_id"] == .string("conv_1"))
    }

    @Test func unknownFinishReasonsBecomeStop() {
        #expect(CompletionEnvelope.openAIFinishReason("eos") == "stop")
        #expect(CompletionEnvelope.openAIFinishReason("length") == "length")
        #expect(CompletionEnvelope.openAIFinishReason(nil) == "stop")
    }
}
