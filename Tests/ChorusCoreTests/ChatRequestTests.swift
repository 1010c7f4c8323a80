import Foundation
import ChorusCore
import Testing

@Suite struct ChatRequestTests {
    private func parse(_ json: String) throws -> ChatRequest {
        try ChatRequest(json: try JSONValue.parse(Array(json.utf8)))
    }

    private func rejection(_ json: String) -> ChorusError? {
        do {
            _ = try parse(json)
            return nil
        } catch {
            return error as? ChorusError
        }
    }

    @Test func validRequestKeepsUnknownFieldsForUpstream() throws {
        let request = try parse(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"temperature":0.2,"conversation_id":"conv_1"}"#)
        #expect(request.model == "m")
        #expect(request.stream && request.includeUsage)
        #expect(request.conversationID == "conv_1")
        #expect(request.body["temperature"] == .double(0.2))
        #expect(request.body["conversation_id"] == nil, "the extension is not forwarded upstream")
        #expect(request.messages.map(\.text) == ["hi"])
    }

    @Test(arguments: [#"true"#, #"false"#, #"null"#, #"{}"#, #"{"ttl_seconds":60}"#, #"{"ttl_seconds":0.5}"#, #"{"ttl_seconds":31536000}"#])
    func aValidCacheFieldStaysInTheBody(cache: String) throws {
        let request = try parse(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"cache":"# + cache + "}")
        #expect(request.body["cache"] != nil, "the engine reads it (and keeps it from the upstream)")
    }

    /// A huge `ttl_seconds` once overflowed the cache entry's expiry and crashed the process.
    @Test(arguments: [
        (#"{"ttl_seconds":1e300}"#, "cache.ttl_seconds"),
        (#"{"ttl_seconds":31536001}"#, "cache.ttl_seconds"),
        (#"{"ttl_seconds":0}"#, "cache.ttl_seconds"),
        (#"{"ttl_seconds":-5}"#, "cache.ttl_seconds"),
        (#"{"ttl_seconds":"60"}"#, "cache.ttl_seconds"),
        (#""yes""#, "cache"),
        (#"3"#, "cache"),
        (#"[]"#, "cache"),
    ])
    func aBadCacheFieldIsRefused(cache: String, param: String) {
        let error = rejection(#"{"model":"m","messages":[{"role":"user","content":"hi"}],"cache":"# + cache + "}")
        #expect(error?.httpStatus == 400)
        #expect(error?.param == param)
    }

    @Test func contentPartsGiveTextAndFlagImages() throws {
        let request = try parse(#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA"}}]}]}"#)
        #expect(request.messages[0].text == "what is this")
        #expect(request.messages[0].hasNonTextParts)
    }

    @Test(arguments: [
        (#"{"messages":[{"role":"user","content":"x"}]}"#, "model"),
        (#"{"model":"m"}"#, "messages"),
        (#"{"model":"m","messages":"hi"}"#, "messages"),
        (#"{"model":"m","messages":[]}"#, "messages"),
        (#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#, "messages[0].role"),
        (#"{"model":"m","messages":[{"role":"user"}]}"#, "messages[0].content"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":"yes"}"#, "stream"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":true}}"#, "stream_options"),
        (#"{"model":"m","messages":[{"role":"user","content":"x"}],"conversation_id":5}"#, "conversation_id"),
        (#"[1,2]"#, nil),
    ] as [(String, String?)])
    func invalidRequestsNameTheParameter(json: String, param: String?) {
        let error = rejection(json)
        #expect(error?.httpStatus == 400)
        #expect(error?.param == param)
    }

    @Test func malformedJSONIsA400() {
        #expect(throws: ChorusError.self) { try JSONValue.parse(Array(#"{"model": "#.utf8)) }
        do {
            _ = try JSONValue.parse(Array("{nope".utf8))
        } catch let error as ChorusError {
            #expect(error.httpStatus == 400)
            #expect(error.code == "invalid_json")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func errorBodyHasEveryRequiredKeyEvenWhenNull() throws {
        let json = try JSONValue.parse(Array(try JSONEncoder.compact.encode(ChorusError.internalError("secret").body)))
        #expect(json["error"]?["param"] == .null)
        #expect(json["error"]?["message"]?.stringValue?.contains("secret") == false, "internals never reach the client")
        #expect(json["error"]?["type"] == .string("server_error"))
    }
}

@Suite struct ChatRequestToolAndStoreTests {
    private func parse(_ json: String) throws -> ChatRequest {
        try ChatRequest(json: try JSONValue.parse(Array(json.utf8)))
    }

    @Test func storeIsChorusesAndNotForwarded() throws {
        let request = try parse(#"{"model":"m","store":false,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(request.store == false)
        #expect(request.body["store"] == nil)
        #expect(try parse(#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).store == nil)
        #expect(throws: ChorusError.self) { try parse(#"{"model":"m","store":"yes","messages":[{"role":"user","content":"hi"}]}"#) }
    }

    @Test func aToolRoundTripIsAccepted() throws {
        let request = try parse(#"""
            {"model":"m","tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"auto",
             "messages":[{"role":"system","content":"s"},{"role":"user","content":"q"},
               {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
               {"role":"tool","tool_call_id":"call_1","content":"42"}]}
            """#)
        #expect(request.messages.map(\.role) == ["system", "user", "assistant", "tool"])
        #expect(request.messages[2].toolCalls?.arrayValue?.count == 1)
        #expect(request.messages[3].toolCallID == "call_1")
        #expect(request.body["tools"] != nil && request.body["tool_choice"] == .string("auto"))
    }

    @Test(arguments: [
        (#"{"role":"tool","content":"42"}"#, "messages[0].tool_call_id"),
        (#"{"role":"assistant","content":null,"tool_calls":{"id":"x"}}"#, "messages[0].tool_calls"),
        (#"{"role":"assistant","content":null,"tool_calls":[{"type":"function","function":{"name":"f","arguments":"{}"}}]}"#, "messages[0].tool_calls[0].id"),
        (#"{"role":"user","content":"x","name":3}"#, "messages[0].name"),
    ])
    func invalidToolMessagesNameTheField(message: String, param: String) throws {
        do {
            _ = try parse(#"{"model":"m","messages":[\#(message)]}"#)
            Issue.record("accepted \(message)")
        } catch let error as ChorusError {
            #expect(error.param == param)
        }
    }
}
