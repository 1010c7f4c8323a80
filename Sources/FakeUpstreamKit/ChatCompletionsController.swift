#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /v1/chat/completions`: deterministic answers, streamed or not, with fault injection.
///
/// Besides text, it answers with tool calls, tool-result summaries, JSON, refusals and
/// logprobs, and honours `stop` and `max_completion_tokens`, so the gateway's handling of
/// each can be tested; `Answer` says which request gets which answer.
struct ChatCompletionsController<Context: RequestContext>: Sendable {
    let configuration: FakeUpstreamConfiguration
    let stats: FakeUpstreamStats

    /// Request bodies larger than this are refused.
    static var maxBodySize: Int { 16 * 1024 * 1024 }

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.post("chat/completions") { request, _ in
            try await self.chatCompletion(request)
        }
        return routes
    }

    func chatCompletion(_ request: Request) async throws -> Response {
        var request = request
        if let traceparent = request.headers[HTTPField.Name("traceparent")!] {
            await self.stats.recordTraceparent(traceparent)
        }
        let body = try await request.collectBody(upTo: Self.maxBodySize)
        let chat: ChatRequest
        do {
            chat = try JSONDecoder().decode(ChatRequest.self, from: Data(body.readableBytesView))
        } catch {
            _ = await self.stats.recordRequest(body: nil)
            return OpenAIErrorBody.response(status: 400, message: "The fake upstream could not parse the request body as a chat completion request: \(error)")
        }
        let sequence = await self.stats.recordRequest(body: body)

        // Options: directives in the last user message, then the X-Fake header on top.
        var options = FakeOptions()
        let lastUserText = chat.lastUserMessage?.text ?? ""
        let directive = FakeDirective.extract(from: lastUserText)
        do {
            for arguments in directive.arguments {
                try options.apply(arguments: arguments)
            }
            if let header = request.headers[.fakeOptions] {
                try options.apply(arguments: header[...])
            }
        } catch {
            return OpenAIErrorBody.response(status: 400, message: error.message)
        }

        if options.stallFirst > 0 {
            try await Task.sleep(for: .seconds(options.stallFirst))
        }
        if let status = options.status, status >= 400, await options.failsNow(lastUserText, stats: self.stats) {
            return OpenAIErrorBody.response(
                status: status,
                message: "The fake upstream was asked to fail with status \(status).",
                retryAfter: options.retryAfter
            )
        }

        var (answer, finishReason) = Answer.decide(
            for: chat,
            options: options,
            userText: directive.remainder,
            sequence: sequence,
            defaultTokenCount: self.configuration.defaultTokenCount
        )
        if options.blockPrompt != nil {
            answer = .content(.counted(0))
        }
        if options.block != nil || options.blockPrompt != nil {
            finishReason = .contentFilter
        }
        let plan = CompletionPlan(
            id: "chatcmpl-fake-\(sequence)",
            created: Int(Date().timeIntervalSince1970),
            quotedModel: JSONText.quoted(chat.model ?? self.configuration.defaultModel),
            metadataJSON: CompletionPlan.metadataJSON(serviceTier: chat.serviceTier),
            answer: answer,
            finishReason: finishReason,
            reasoningCount: options.reasoning,
            thinkTags: options.thinkTags,
            promptTokens: chat.promptWordCount(lastUserText: directive.remainder),
            topLogprobs: chat.logprobs == true ? min(max(chat.topLogprobs ?? 0, 0), LogprobsJSON.maxTopCount) : nil
        )
        let tokensPerSecond = options.rate ?? self.configuration.defaultTokensPerSecond
        if chat.stream == true {
            return self.streamedResponse(
                plan: plan,
                options: options,
                tokensPerSecond: tokensPerSecond,
                includeUsage: chat.streamOptions?.includeUsage == true,
                request: request
            )
        }
        return try await self.completeResponse(plan: plan, options: options, tokensPerSecond: tokensPerSecond)
    }

    /// A non-streamed `chat.completion`, after the time its chunks would take to stream at the given rate.
    private func completeResponse(plan: CompletionPlan, options: FakeOptions, tokensPerSecond: Double) async throws -> Response {
        var delay = options.stallAfter != nil ? options.stall : 0
        if tokensPerSecond > 0 {
            delay += Double(plan.answer.streamedCount + plan.reasoningCount) / tokensPerSecond
        }
        if delay > 0 {
            try await Task.sleep(for: .seconds(delay))
        }
        if options.errorAfter != nil {
            return OpenAIErrorBody.response(status: 500, message: "The fake upstream failed (error_after).")
        }
        let headers: HTTPFields = [.contentType: "application/json", .requestID: plan.id]
        if options.malformedAfter != nil {
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(staticString: "{\"id\": broken")))
        }
        let json = ByteBuffer(string: plan.completionJSON(includeUsage: options.usage))
        if options.disconnectAfter != nil {
            // Promise the whole body, send half of it, then drop the connection.
            return Response(
                status: .ok,
                headers: headers,
                body: ResponseBody(contentLength: json.readableBytes) { writer in
                    try await writer.write(json.getSlice(at: json.readerIndex, length: json.readableBytes / 2)!)
                    throw FakeUpstreamDisconnect()
                }
            )
        }
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: json))
    }

    /// A `text/event-stream` of `chat.completion.chunk` events.
    ///
    /// Client aborts are detected in two ways. When the stream waits (a rate or a stall, or
    /// `watch_close=1`), the writer runs inside `consumeWithCancellationOnInboundClose`, which
    /// cancels it as soon as the client closes its side of the connection; Hummingbird then
    /// closes the connection after the response, so those responses say `Connection: close`.
    /// Otherwise (a burst with no waits) a failed write reveals the abort and the connection
    /// stays reusable.
    private func streamedResponse(
        plan: CompletionPlan,
        options: FakeOptions,
        tokensPerSecond: Double,
        includeUsage: Bool,
        request: Request
    ) -> Response {
        let watchClose = options.watchClose ?? (tokensPerSecond > 0 || (options.stallAfter != nil && options.stall > 0))
        var headers: HTTPFields = [
            .contentType: "text/event-stream",
            .cacheControl: "no-cache",
            .requestID: plan.id,
        ]
        if watchClose {
            headers[.connection] = "close"
        }
        let stats = self.stats
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                await stats.streamStarted()
                let ending: ChatStream.Ending
                do {
                    var stream = ChatStream(plan: plan, options: options, tokensPerSecond: tokensPerSecond, includeUsage: includeUsage)
                    if watchClose {
                        ending = try await request.body.consumeWithCancellationOnInboundClose { _ in
                            try await stream.write(to: &writer)
                        }
                    } else {
                        ending = try await stream.write(to: &writer)
                    }
                } catch {
                    // Cancelled because the inbound side closed, or a write failed: the client left.
                    await stats.streamEnded(.abortedByClient)
                    throw error
                }
                switch ending {
                case .finished:
                    await stats.streamEnded(.completed)
                case .disconnect:
                    await stats.streamEnded(.disconnectedByServer)
                    // Throwing out of the body writer makes Hummingbird close the connection
                    // without the chunked-encoding terminator: the client sees a truncated body.
                    throw FakeUpstreamDisconnect()
                }
            }
        )
    }
}

/// Thrown from a response body writer to make the server drop the connection mid-body.
struct FakeUpstreamDisconnect: Error {}

extension HTTPField.Name {
    /// `X-Fake: key=value ...`, per-request options for direct callers such as benchmarks.
    static let fakeOptions = Self("X-Fake")!
    static let requestID = Self("X-Request-ID")!
}
