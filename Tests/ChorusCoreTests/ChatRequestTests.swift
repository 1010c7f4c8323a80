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
