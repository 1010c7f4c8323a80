import ChorusCore
import ChorusRuntime
import ChorusStore
import HTTPTypes
import Hummingbird
import Foundation
import Logging
import NIOCore
import NIOPosix

/// `POST /v1/chat/completions`: OpenAI's Chat Completions, non-streamed and streamed (SSE).
struct ChatCompletionsController<Store: ConversationStore>: Sendable {
    let engine: ChatEngine<Store>
    let maxBodyBytes: Int
    let onDisconnect: ChorusConfiguration.DisconnectPolicy
    /// The Async-Chat form (multipart), when asynchronous work is available.
    var uploads: UploadsController<Store>?
    /// Token limits and budgets: checked before the call, charged with the real usage after.
    var accounts: AuthService?
    var keepAliveInterval: Duration = .seconds(5)
    /// On SIGTERM, cuts the streams still open when the grace has passed.
    var drain: ShutdownDrain?

    enum StreamItem: Sendable {
        case event(ProviderEvent)
        case keepAlive
    }

    var endpoints: RouteCollection<ChorusRequestContext> {
        let routes = RouteCollection(context: ChorusRequestContext.self)
        routes.post("chat/completions", use: create)
        return routes
    }

    @Sendable func create(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        if let uploads, request.headers[.contentType]?.lowercased().hasPrefix("multipart/form-data") == true {
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: maxBodyBytes)
            } catch {
                throw ChorusError.payloadTooLarge(limit: maxBodyBytes)
            }
            // The form starts tasks and stores files as well as chatting.
            try context.require(.tasks)
            try context.require(.files)
            return try await uploads.asyncChat(request, body: body, context: context)
        }
        let chat = try await parse(request)
        if let accounts, let principal = context.principal {
            try await accounts.admitChat(principal: principal, ip: context.clientIP)
        }
        // `Cache-Control: no-cache` asks for a fresh answer (which then replaces the cached one).
        let noCache = request.headers[.cacheControl]?.lowercased().contains("no-cache") == true
        let turn = try await engine.prepare(
            chat, ownerID: context.ownerID, requestID: context.requestID,
            options: TurnOptions(apiKeyID: context.principal?.apiKeyID, bypassCache: noCache))
        do {
            return try await respond(chat, turn: turn, request: request, context: context)
        } catch let error as ChorusError {
            // The turn is stored (the user message and the failed answer): say where.
            var response = APIMiddleware.errorResponse(error)
            if let conversation = turn.conversation { response.headers[.conversationID] = conversation.id }
            return response
        }
    }

    /// Charges the call's real usage to the token limits and budgets.
    private func settle(_ output: CompletionOutput, context: ChorusRequestContext) async {
        guard let accounts, let principal = context.principal, let usage = output.usage else { return }
        await accounts.settleChat(principal: principal, ip: context.clientIP, tokens: usage.totalTokens)
    }

    // Not inlined into `create` (nor `respond`): a task keeps the async-frame space of its deepest
    // moment for its whole life, and a stream's handler task lives as long as the stream.
    @inline(never)
    private func parse(_ request: Request) async throws -> ChatRequest {
        let body: ByteBuffer
        do {
            // Not `collectBody`: the original body must stay intact for inbound-close detection.
            body = try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            throw ChorusError.payloadTooLarge(limit: maxBodyBytes)
        }
        return try ChatRequest(json: try JSONValue.parse(body.readableBytesView))
    }

    @inline(never)
    private func respond(_ chat: ChatRequest, turn: PreparedTurn, request: Request, context: ChorusRequestContext) async throws -> Response {
        let envelope = CompletionEnvelope(
            id: "chatcmpl-" + context.requestID.dropFirst(4), created: Int(turn.startedAt / 1000),
            model: chat.model, conversationID: turn.conversation?.id)
        var headers = HTTPFields()
        if let conversation = turn.conversation { headers[.conversationID] = conversation.id }

        guard chat.stream else {
            let output = try await engine.complete(turn)
            await settle(output, context: context)
            Self.describeServer(turn, in: &headers)
            headers[.contentType] = "application/json"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: envelope.completion(output))))
        }

        // The turn runs in its own task so that the status line can wait for the first event: an
        // upstream that fails before its first token gets a real 502/504, not a 200 with an error.
        let (events, continuation) = AsyncThrowingStream<StreamItem, any Error>.makeStream()
        // Set once: by the first event, or by the error that came instead.
        let firstEvent = OneShot<(any Error)?>()
        let engine = self.engine
        let settleContext = context
        // Says why the turn was cancelled when the drain cuts it: the partial is saved with
        // `reason=shutdown`, and the client gets a 503-shaped error event instead of a bare cancel.
        let note = CancellationNote()
        let generation = Task {
            await CancellationNote.$current.withValue(note) {
                do {
                    let output = try await engine.stream(turn) { event in
                        firstEvent.set(nil)
                        continuation.yield(.event(event))
                    }
                    await settle(output, context: settleContext)
                    firstEvent.set(nil)
                    continuation.finish()
                } catch {
                    let cut = note.reason == ShutdownDrain.cutReason ? ShutdownDrain.cutError : error
                    firstEvent.set(cut)
                    continuation.finish(throwing: cut)
                }
            }
        }
        let drainKey = drain?.opened {
            note.reason = ShutdownDrain.cutReason
            generation.cancel()
        }
        // While the upstream is silent, a comment line every few seconds keeps proxies from timing
        // out and, when its write fails, tells us the client is gone. An event-loop timer, not a
        // task: a task per stream would keep its own stack of async frames for the whole stream.
        let interval = TimeAmount(keepAliveInterval)
        let keepAlive = MultiThreadedEventLoopGroup.singleton.any().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            continuation.yield(.keepAlive)
        }
        continuation.onTermination = { _ in keepAlive.cancel() }
        if let error = await firstEvent.value() {
            if let drainKey { drain?.closed(drainKey) }
            throw error
        }

        Self.describeServer(turn, in: &headers)
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        let cancelOnDisconnect = onDisconnect == .cancel
        let includeUsage = chat.includeUsage
        let logger = context.logger
        let metrics = engine.metrics
        let drain = self.drain
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            metrics.streamOpened("sse")
            defer {
                metrics.streamClosed("sse")
                if let drainKey { drain?.closed(drainKey) }
            }
            // A client that leaves makes a write fail (a token or a keep-alive). Hummingbird's
            // inbound-close handler is not used: after the body was read it can trap on a clean close.
            do {
                try await Self.writeEvents(events, envelope: envelope, includeUsage: includeUsage, to: &writer)
            } catch {
                // The client is gone (a write failed): stop the upstream unless told to finish detached.
                if cancelOnDisconnect { generation.cancel() }
                logger.info("stream client went away", metadata: ["error": "\(error)"])
                throw error
            }
            try await writer.finish(nil)
        })
    }

    /// `X-Chorus-Model`, `X-Chorus-Deployment` and `X-Chorus-Cache`: who answered.
    private static func describeServer(_ turn: PreparedTurn, in headers: inout HTTPFields) {
        guard let served = turn.servedBy.current else { return }
        headers[.chorusModel] = served.model
        if let deployment = served.deployment { headers[.chorusDeployment] = deployment }
        headers[.chorusCache] = served.cacheHit ? "hit" : "miss"
    }

    private static func writeEvents(
        _ events: AsyncThrowingStream<StreamItem, any Error>, envelope: CompletionEnvelope, includeUsage: Bool,
        to writer: inout some ResponseBodyWriter
    ) async throws {
        try await writer.write(sse(envelope.chunk(.role, includeUsageField: includeUsage)))
        var usage: Usage?
        // `system_fingerprint` / `service_tier`, once the upstream reports them: on every later chunk.
        var metadata: [UInt8] = []
        var items = events.makeAsyncIterator()
        while true {
            let next: StreamItem?
            do {
                next = try await items.next()
            } catch {
                // Headers are gone already: the error travels as an SSE event (the OpenAI SDKs raise
                // it), so that no stream ends with neither `[DONE]` nor an error.
                let chorusError = (error as? ChorusError) ?? .internalError("\(error)")
                let json = (try? JSONEncoder.compact.encode(chorusError.body)).map { Array($0) } ?? []
                try await writer.write(sse(json))
                return
            }
            guard let item = next else { break }
            guard case .event(let event) = item else {
                try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                continue
            }
            let delta: CompletionEnvelope.Delta
            switch event {
            case .content(let text): delta = .content(text)
            case .reasoning(let text): delta = .reasoning(text)
            case .refusal(let text): delta = .refusal(text)
            case .toolCalls(let calls): delta = .toolCalls(calls)
            case .logprobs(let value): delta = .logprobs(value)
            case .finish(let reason): delta = .finish(reason)
            case .metadata(let value):
                metadata = CompletionEnvelope.metadataMembers(value)
                continue
            case .usage(let value):
                usage = value
                continue
            }
            try await writer.write(sse(envelope.chunk(delta, includeUsageField: includeUsage, metadata: metadata)))
        }
        if includeUsage, let usage {
            try await writer.write(sse(envelope.usageChunk(usage, metadata: metadata)))
        }
        try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
    }

    private static func sse(_ json: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + 8)
        buffer.writeString("data: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }
}
