import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Gemini's API: `POST /v1beta/models/{model}:generateContent` and
/// `:streamGenerateContent?alt=sse`, answering as the OpenAI mode decides (`Answer`,
/// `CompletionPlan`), with the same `[[fake ...]]` directives (in the last user text) and faults,
/// rendered by `GeminiEvents`. `block=REASON` blocks the answer, `block_prompt=REASON` the prompt.
///
/// With an API key configured, a call needs it in `x-goog-api-key` (or `?key=`): without one it
/// gets 403 PERMISSION_DENIED, with a wrong one 400 INVALID_ARGUMENT with reason
/// API_KEY_INVALID, as Google answers. Bodies are recorded like the OpenAI mode's.
struct GeminiController<Context: RequestContext>: Sendable {
    let configuration: FakeUpstreamConfiguration
    let stats: FakeUpstreamStats

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("models/{target}") { request, context in
            try await self.generate(request, target: try context.parameters.require("target"))
        }
        return routes
    }

    func generate(_ request: Request, target: String) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: ChatCompletionsController<Context>.maxBodySize)
        let isJSON = (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) != nil
        let sequence = await self.stats.recordRequest(body: isJSON ? body : nil)

        guard let colon = target.lastIndex(of: ":") else {
            return Self.error(status: 404, message: "Method not found: expected {model}:generateContent or {model}:streamGenerateContent.")
        }
        let model = String(target[..<colon])
        let stream: Bool
        switch target[target.index(after: colon)...] {
        case "generateContent": stream = false
        case "streamGenerateContent":
            guard request.uri.queryParameters.get("alt") == "sse" else {
                return Self.error(status: 400, message: "The fake upstream streams only as server-sent events (?alt=sse).")
            }
            stream = true
        default:
            return Self.error(status: 404, message: "Method not found: \(target)")
        }
        if let key = self.configuration.apiKey {
            let query: String? = request.uri.queryParameters.get("key").map { String($0) }
            let sent = request.headers[.googleAPIKey] ?? query
            guard let sent else {
                return Self.error(status: 403, message: "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.")
            }
            guard sent == key else {
                return Self.error(status: 400, message: "API key not valid. Please pass a valid API key.", reason: "API_KEY_INVALID")
            }
        }
        let gemini: GeminiRequest
        do {
            gemini = try GeminiRequest(body: Data(body.readableBytesView), model: model, stream: stream)
        } catch {
            return Self.error(status: 400, message: error.message)
        }
        let chat = gemini.chat

        var options = FakeOptions()
        let directive = FakeDirective.extract(from: chat.lastUserMessage?.text ?? "")
        do {
            for arguments in directive.arguments {
                try options.apply(arguments: arguments)
            }
            if let header = request.headers[.fakeOptions] {
                try options.apply(arguments: header[...])
            }
        } catch {
            return Self.error(status: 400, message: error.message)
        }
        if options.stallFirst > 0 {
            try await Task.sleep(for: .seconds(options.stallFirst))
        }
        if let status = options.status, status >= 400, await options.failsNow(chat.lastUserMessage?.text ?? "", stats: self.stats) {
            var response = Self.error(status: status, message: "The fake upstream was asked to fail with status \(status).")
            if let retryAfter = options.retryAfter { response.headers[.retryAfter] = String(retryAfter) }
            return response
        }

        let (answer, finishReason) = Answer.decide(
            for: chat, options: options, userText: directive.remainder, sequence: sequence,
            defaultTokenCount: self.configuration.defaultTokenCount)
        let plan = CompletionPlan(
            id: "fake-gemini-\(sequence)", created: Int(Date().timeIntervalSince1970),
            quotedModel: JSONText.quoted(model), metadataJSON: "",
            answer: answer, finishReason: finishReason, reasoningCount: options.reasoning, thinkTags: options.thinkTags,
            promptTokens: chat.promptWordCount(lastUserText: directive.remainder), topLogprobs: nil)
        let events = GeminiEvents(plan: plan, options: options, includeThoughts: gemini.includeThoughts)
        let tokensPerSecond = options.rate ?? self.configuration.defaultTokensPerSecond
        let headers: HTTPFields = [.contentType: stream ? "text/event-stream" : "application/json", .requestID: plan.id]

        if let reason = options.blockPrompt {
            let json = events.promptBlockedBody(reason: reason)
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: stream ? "data: " + json + "\r\n\r\n" : json)))
        }
        if stream {
            return self.streamedResponse(plan: plan, options: options, events: events, tokensPerSecond: tokensPerSecond, headers: headers, request: request)
        }
        var delay = options.stallAfter != nil ? options.stall : 0
        if tokensPerSecond > 0 {
            delay += Double(plan.answer.streamedCount + plan.reasoningCount) / tokensPerSecond
        }
        if delay > 0 {
            try await Task.sleep(for: .seconds(delay))
        }
        if options.errorAfter != nil {
            return Self.error(status: 500, message: "The fake upstream failed (error_after).")
        }
        if options.malformedAfter != nil {
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(staticString: "{\"candidates\": broken")))
        }
        let json = ByteBuffer(string: events.completeBody())
        if options.disconnectAfter != nil {
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(contentLength: json.readableBytes) { writer in
                    try await writer.write(json.getSlice(at: json.readerIndex, length: json.readableBytes / 2)!)
                    throw FakeUpstreamDisconnect()
                })
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: json))
    }

    /// The stream, with the OpenAI mode's faults and client-abort detection (see
    /// `ChatCompletionsController.streamedResponse`).
    private func streamedResponse(plan: CompletionPlan, options: FakeOptions, events: GeminiEvents, tokensPerSecond: Double, headers: HTTPFields, request: Request) -> Response {
        let watchClose = options.watchClose ?? (tokensPerSecond > 0 || (options.stallAfter != nil && options.stall > 0))
        var headers = headers
        if watchClose {
            headers[.connection] = "close"
        }
        let stats = self.stats
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                await stats.streamStarted()
                let ending: ChatStream.Ending
                do {
                    var stream = ChatStream(plan: plan, options: options, tokensPerSecond: tokensPerSecond, events: events)
                    if watchClose {
                        ending = try await request.body.consumeWithCancellationOnInboundClose { _ in
                            try await stream.write(to: &writer)
                        }
                    } else {
                        ending = try await stream.write(to: &writer)
                    }
                } catch {
                    await stats.streamEnded(.abortedByClient)
                    throw error
                }
                switch ending {
                case .finished:
                    await stats.streamEnded(.completed)
                case .disconnect:
                    await stats.streamEnded(.disconnectedByServer)
                    throw FakeUpstreamDisconnect()
                }
            })
    }

    static func error(status: Int, message: String, reason: String? = nil) -> Response {
        Response(
            status: HTTPResponse.Status(code: status),
            headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: GeminiEvents.errorJSON(status: status, message: message, reason: reason))))
    }
}

extension HTTPField.Name {
    static let googleAPIKey = Self("x-goog-api-key")!
}
