import AsyncHTTPClient
import ChorusCore
import FakeUpstreamKit
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import ChorusProviders

/// The Gemini provider: OpenAI requests written as Gemini's, Gemini's answers read as OpenAI's,
/// and whole calls against the fake upstream's Gemini mode.
@Suite struct GeminiProviderTests {
    static func parse(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    static func body(_ text: String) throws -> [String: JSONValue] {
        try #require(try parse(text).objectValue)
    }

    // MARK: - Requests

    @Test func instructionsHistoryAndImagesBecomeContents() throws {
        let body = try Self.body(#"""
            {"messages":[
              {"role":"system","content":"Be brief."},
              {"role":"user","content":"Hello"},
              {"role":"assistant","content":"Hi!"},
              {"role":"developer","content":[{"type":"text","text":"Answer in French."}]},
              {"role":"user","content":[{"type":"text","text":"What is this?"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}
            ]}
            """#)
        let gemini = try GeminiRequestBody.make(from: body)
        #expect(gemini["systemInstruction"] == (try Self.parse(#"{"parts":[{"text":"Be brief."},{"text":"Answer in French."}]}"#)))
        #expect(gemini["contents"] == (try Self.parse(#"""
            [{"role":"user","parts":[{"text":"Hello"}]},
             {"role":"model","parts":[{"text":"Hi!"}]},
             {"role":"user","parts":[{"text":"What is this?"},{"inline_data":{"mime_type":"image/png","data":"iVBORw0KGgo="}}]}]
            """#)))
        #expect(gemini["generationConfig"] == nil && gemini["tools"] == nil)
    }

    @Test func anImageAtAWebURLIsRefusedAndAFileURIIsFileData() throws {
        let web = try Self.body(#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}"#)
        let error = #expect(throws: ChorusError.self) { try GeminiRequestBody.make(from: web) }
        #expect(error?.httpStatus == 400 && error?.param == "messages[0].content[0].image_url.url")
        let file = try Self.body(#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}"#)
        #expect(try GeminiRequestBody.make(from: file)["contents"]?.arrayValue?.first?["parts"]
            == (try Self.parse(#"[{"file_data":{"file_uri":"https://generativelanguage.googleapis.com/v1beta/files/abc"}}]"#)))
    }

    @Test func toolCallsAndResultsBecomeFunctionCallsAndResponses() throws {
        let body = try Self.body(#"""
            {"messages":[
              {"role":"user","content":"Weather in Paris and Rome?"},
              {"role":"assistant","content":null,"tool_calls":[
                {"id":"call_1__thought__c2ln","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                {"id":"call_2","type":"function","function":{"name":"get_time","arguments":""}}]},
              {"role":"tool","tool_call_id":"call_1__thought__c2ln","content":"{\"temp\":21}"},
              {"role":"tool","tool_call_id":"call_2","content":"noon"}
             ],
             "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"additionalProperties":false}}},
                      {"type":"function","function":{"name":"get_time"}}],
             "tool_choice":{"type":"function","function":{"name":"get_weather"}}}
            """#)
        let gemini = try GeminiRequestBody.make(from: body)
        #expect(gemini["contents"] == (try Self.parse(#"""
            [{"role":"user","parts":[{"text":"Weather in Paris and Rome?"}]},
             {"role":"model","parts":[{"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln"},{"functionCall":{"name":"get_time","args":{}}}]},
             {"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"temp":21}}},
                                     {"functionResponse":{"name":"get_time","response":{"result":"noon"}}}]}]
            """#)))
        #expect(gemini["tools"] == (try Self.parse(#"""
            [{"functionDeclarations":[
              {"name":"get_weather","description":"Weather","parametersJsonSchema":{"type":"object","properties":{"city":{"type":"string"}},"additionalProperties":false}},
              {"name":"get_time"}]}]
            """#)))
        #expect(gemini["toolConfig"] == (try Self.parse(#"{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}}"#)))
    }

    @Test func toolChoiceModes() throws {
        for (choice, mode) in [("\"none\"", "NONE"), ("\"auto\"", "AUTO"), ("\"required\"", "ANY")] {
            let body = try Self.body(#"{"messages":[{"role":"user","content":"x"}],"tool_choice":\#(choice)}"#)
            #expect(try GeminiRequestBody.make(from: body)["toolConfig"]?["functionCallingConfig"]?["mode"] == .string(mode))
        }
    }

    @Test func aToolResultForNoKnownCallIsA400() throws {
        let body = try Self.body(#"{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_9","content":"1"}]}"#)
        let error = #expect(throws: ChorusError.self) { try GeminiRequestBody.make(from: body) }
        #expect(error?.param == "messages[1].tool_call_id")
    }

    @Test func samplingLimitsFormatAndThinking() throws {
        let body = try Self.body(#"""
            {"messages":[{"role":"user","content":"x"}],"temperature":0.2,"top_p":0.9,"max_completion_tokens":100,"max_tokens":5,
             "stop":"END","seed":7,"reasoning_effort":"low",
             "response_format":{"type":"json_schema","json_schema":{"name":"r","schema":{"type":"object"}}}}
            """#)
        #expect(try GeminiRequestBody.make(from: body)["generationConfig"] == (try Self.parse(#"""
            {"temperature":0.2,"topP":0.9,"maxOutputTokens":100,"stopSequences":["END"],"seed":7,
             "thinkingConfig":{"includeThoughts":true,"thinkingBudget":1024},
             "responseMimeType":"application/json","responseJsonSchema":{"type":"object"}}
            """#)))
        let json = try Self.body(#"{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"},"reasoning_effort":"none","stop":["a","b"]}"#)
        #expect(try GeminiRequestBody.make(from: json)["generationConfig"] == (try Self.parse(#"""
            {"responseMimeType":"application/json","thinkingConfig":{"thinkingBudget":0},"stopSequences":["a","b"]}
            """#)))
        let logprobs = try Self.body(#"{"messages":[{"role":"user","content":"x"}],"logprobs":true}"#)
        #expect(throws: ChorusError.self) { try GeminiRequestBody.make(from: logprobs) }
    }

    // MARK: - Responses

    @Test func thoughtsTextCallsAndUsage() throws {
        var decoder = GeminiResponseDecoder()
        let events = try decoder.events(try Self.parse(#"""
            {"candidates":[{"content":{"role":"model","parts":[{"text":"hmm","thought":true},{"text":"Let me look."},
              {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln"}]},"finishReason":"STOP"}],
             "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":5,"thoughtsTokenCount":3,"totalTokenCount":18}}
            """#))
        var output = CompletionOutput()
        for event in events { output.apply(event) }
        #expect(output.reasoning == "hmm" && output.content == "Let me look.")
        #expect(output.toolCalls.count == 1 && output.toolCalls[0].name == "get_weather" && output.toolCalls[0].arguments == #"{"city":"Paris"}"#)
        #expect(output.toolCalls[0].id.hasPrefix("call_") && output.toolCalls[0].id.hasSuffix("__thought__c2ln"))
        #expect(decoder.finishReason == "tool_calls")
        #expect(decoder.usage == Usage(
            promptTokens: 10, completionTokens: 8, promptTokensDetails: .object(["cached_tokens": .int(0)]),
            completionTokensDetails: .object(["reasoning_tokens": .int(3)])))
    }

    @Test func streamedCallsAreNumberedAndMaxTokensIsLength() throws {
        var decoder = GeminiResponseDecoder()
        let call = #"{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f"}}]}}]}"#
        func index(_ events: [ProviderEvent]) -> Int? {
            guard case .toolCalls(let value)? = events.first else { return nil }
            return value.arrayValue?.first?["index"]?.intValue
        }
        #expect(index(try decoder.events(try Self.parse(call))) == 0)
        #expect(index(try decoder.events(try Self.parse(call))) == 1)
        var text = GeminiResponseDecoder()
        _ = try text.events(try Self.parse(#"{"candidates":[{"content":{"parts":[{"text":"a"}]},"finishReason":"MAX_TOKENS"}]}"#))
        #expect(text.finishReason == "length")
    }

    @Test func aSafetyBlockIsAContentFilterWithTheReason() throws {
        var decoder = GeminiResponseDecoder()
        let events = try decoder.events(try Self.parse(#"""
            {"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"SAFETY",
              "safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"},
                               {"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}]}
            """#))
        #expect(events == [.refusal("Gemini blocked the response (SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT).")])
        #expect(decoder.finishReason == "content_filter")

        var prompt = GeminiResponseDecoder()
        let blocked = try prompt.events(try Self.parse(#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"usageMetadata":{"promptTokenCount":4}}"#))
        #expect(blocked == [.refusal("Gemini blocked the prompt (PROHIBITED_CONTENT).")])
        #expect(prompt.finishReason == "content_filter" && prompt.usage?.promptTokens == 4)
    }

    @Test func errorsMapToTheClientsOrTheUpstreams() throws {
        func error(_ status: Int, _ body: String) -> ChorusError {
            GeminiProvider.upstreamHTTPError(status: status, body: ByteBuffer(string: body))
        }
        let invalid = error(400, #"{"error":{"code":400,"message":"Unknown name \"foo\"","status":"INVALID_ARGUMENT"}}"#)
        #expect(invalid.httpStatus == 400 && invalid.code == "invalid_argument" && invalid.message.contains("Unknown name"))
        let key = error(400, #"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#)
        #expect(key == .upstreamError(message: "API key not valid.", upstreamStatus: 400))
        #expect(error(429, #"{"error":{"code":429,"message":"Quota","status":"RESOURCE_EXHAUSTED"}}"#) == .upstreamError(message: "Quota", upstreamStatus: 429))
        #expect(error(503, "") == .upstreamError(message: "no details", upstreamStatus: 503))
        var decoder = GeminiResponseDecoder()
        #expect(throws: ChorusError.upstreamError(message: "overloaded", upstreamStatus: 503)) {
            try decoder.events(try Self.parse(#"{"error":{"code":503,"message":"overloaded","status":"UNAVAILABLE"}}"#))
        }
    }

    // MARK: - Against the fake upstream

    struct Endpoint: UpstreamEndpoint {
        let url: String
        func baseURL(timeout: Double) async throws -> String { url }
    }

    /// The provider with the fake's Gemini mode, which requires the key `k`.
    func withFake(_ body: @Sendable @escaping (GeminiProvider, FakeUpstreamStats) async throws -> Void) async throws {
        let stats = FakeUpstreamStats()
        let fake = buildFakeUpstream(configuration: FakeUpstreamConfiguration(port: 0, logLevel: .warning, apiKey: "k"), stats: stats)
        try await fake.test(.live) { client in
            let port = try #require(client.port)
            let clients = UpstreamClients(configuration: .init(), maxConnectionsPerHost: 4)
            let provider = GeminiProvider(
                endpoint: Endpoint(url: "http://127.0.0.1:\(port)/v1beta"), upstreamModel: "models/gemini-test", apiKey: "k",
                timeouts: ModelTimeouts(connect: 5, firstToken: 5, betweenTokens: 5, total: 30), clients: clients, logger: Logger(label: "test"))
            do {
                try await body(provider, stats)
            } catch {
                try await clients.shutdown()
                throw error
            }
            try await clients.shutdown()
        }
    }

    static func request(_ text: String, extra: String = "") throws -> UpstreamRequest {
        UpstreamRequest(body: try body(#"{"messages":[{"role":"user","content":"\#(text)"}]\#(extra)}"#), requestID: "req_test")
    }

    @Test func aStreamAndACompletionThroughTheFake() async throws {
        try await withFake { provider, stats in
            let events = Events()
            try await provider.stream(try Self.request("hi [[fake tokens=3 reasoning=2]]", extra: #","reasoning_effort":"high""#)) { await events.add($0) }
            let streamed = await events.output
            #expect(streamed.reasoning == "r0 r1 " && streamed.content == "t0 t1 t2 " && streamed.finishReason == "stop")
            #expect(streamed.usage?.completionTokens == 5 && streamed.usage?.completionTokensDetails == .object(["reasoning_tokens": .int(2)]))

            let whole = try await provider.complete(try Self.request("hi [[fake tokens=2 block=SAFETY]]"))
            #expect(whole.content == "t0 t1 " && whole.finishReason == "content_filter")
            #expect(whole.refusal == "Gemini blocked the response (SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT).")

            let tools = #","tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}]"#
            let called = Events()
            try await provider.stream(try Self.request("find it", extra: tools)) { await called.add($0) }
            let calls = await called.output
            #expect(calls.toolCalls.map(\.name) == ["lookup"] && calls.toolCalls[0].arguments == #"{"q":"q_0"}"#)
            #expect(calls.finishReason == "tool_calls")

            let sent = await stats.lastRequestBodies(1)
            #expect(sent.first?.contains(#""functionDeclarations""#) == true)
        }
    }

    @Test func faultsThroughTheFake() async throws {
        try await withFake { provider, _ in
            await #expect(throws: ChorusError.upstreamError(message: "The fake upstream was asked to fail with status 503.", upstreamStatus: 503)) {
                try await provider.stream(try Self.request("[[fake status=503]]")) { _ in }
            }
            let rejected = await #expect(throws: ChorusError.self) {
                try await provider.complete(try Self.request("[[fake status=400]]"))
            }
            #expect(rejected?.httpStatus == 400)
            let midStream = Events()
            let failed = await #expect(throws: ChorusError.self) {
                try await provider.stream(try Self.request("[[fake tokens=4 error_after=2]]")) { await midStream.add($0) }
            }
            let partial = await midStream.output.content
            #expect(failed?.httpStatus == 502 && partial == "t0 t1 ")
            await #expect(throws: ChorusError.self) {
                try await provider.stream(try Self.request("[[fake tokens=4 disconnect_after=2]]")) { _ in }
            }
        }
    }

    /// The fake's Gemini mode refuses what Google refuses, so a wrong mapping fails the tests.
    @Test func theFakeChecksKeysAndBodiesAsGoogleDoes() async throws {
        let fake = buildFakeUpstream(configuration: FakeUpstreamConfiguration(port: 0, logLevel: .warning, apiKey: "k"), stats: FakeUpstreamStats())
        try await fake.test(.live) { client in
            func post(_ body: String, key: String? = "k") async throws -> (Int, String) {
                var headers: HTTPFields = [.contentType: "application/json"]
                if let key { headers[HTTPField.Name("x-goog-api-key")!] = key }
                return try await client.execute(uri: "/v1beta/models/m:generateContent", method: .post, headers: headers, body: ByteBuffer(string: body)) {
                    (Int($0.status.code), String(buffer: $0.body))
                }
            }
            let hello = #"{"contents":[{"role":"user","parts":[{"text":"hi [[fake tokens=1]]"}]}]}"#
            #expect(try await post(hello).0 == 200)
            #expect(try await post(hello, key: nil).0 == 403)
            let (wrong, wrongBody) = try await post(hello, key: "x")
            #expect(wrong == 400 && wrongBody.contains("API_KEY_INVALID"))
            for refused in [
                #"{"contents":[]}"#,
                #"{"messages":[{"role":"user","content":"hi"}]}"#,
                #"{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}"#,
                #"{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"max_tokens":5}}"#,
                #"{"contents":[{"role":"user","parts":[{"inline_data":{"mime_type":"image/png","data":"%%%"}}]}]}"#,
                #"{"contents":[{"role":"user","parts":[{"text":"hi"}]},{"role":"user","parts":[{"functionResponse":{"name":"f","response":{}}}]}]}"#,
            ] {
                let (status, body) = try await post(refused)
                #expect(status == 400 && body.contains("INVALID_ARGUMENT"), "\(refused) -> \(status) \(body)")
            }
        }
    }

    actor Events {
        var output = CompletionOutput()
        func add(_ event: ProviderEvent) { output.apply(event) }
    }
}
