import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket
import ServiceLifecycle

/// SkillSpace's AI routes (seeds 000 and 001), so that its front end works unchanged against
/// Chorus: the SSE chat `POST /api/ai/qwen/`, the queued chat `POST /api/ai/qwen-async/` with its
/// WebSocket `/ws/ai/{task_id}/`, and Celery-style `POST /api/tasks/submit/` and
/// `GET /api/tasks/status/{task_id}/`. They are doors onto the same engine, task service and
/// event bus as `/v1`, with the same authentication and ownership; errors come in SkillSpace's
/// shape (`SkillSpaceError`, drawn by `APIMiddleware` for these paths).
struct SkillSpaceController<Store: ConversationStore>: Sendable {
    let engine: ChatEngine<Store>
    let service: TaskService<Store>
    /// `skillspace.model`; nil when none is configured.
    let model: String?
    let maxBodyBytes: Int
    let onDisconnect: ChorusConfiguration.DisconnectPolicy
    /// Token limits and budgets: checked before a turn, charged after.
    var accounts: AuthService?
    /// How long a WebSocket stays open after the task's last event for the client to close it.
    var closeGrace: Duration = .seconds(10)
    /// On SIGTERM, cuts the streams still open when the grace has passed.
    var drain: ShutdownDrain?

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.post("/api/ai/qwen/", use: chat)
        router.post("/api/ai/qwen-async/", use: chatAsync)
        router.post("/api/tasks/submit/", use: submit)
        router.get("/api/tasks/status/:task_id/", use: status)
        router.ws("/ws/ai/:task_id/", shouldUpgrade: { _, context in
            // Only the owner may follow (anyone else's task is not found, before the upgrade).
            _ = try await service.task(id: try context.parameters.require("task_id"), ownerID: context.visibleOwner)
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            let task = try await service.task(id: try context.requestContext.parameters.require("task_id"), ownerID: context.requestContext.visibleOwner)
            try await cancelWhenGracefulShutdown {
                try await follow(task, inbound: inbound, outbound: outbound)
            }
        })
    }

    // MARK: Conversations named by session_id

    /// The conversation a caller's `session_id` names: its id is a hash of the owner and the
    /// session id, so equal session ids of two users name two conversations, with no mapping table
    /// to keep; the first use creates it (`ensureConversation`, safe when two first uses race).
    static func conversationID(ownerID: String, sessionID: String) -> String {
        "conv_ss" + SHA256.hex(Array("\(ownerID)\u{0}\(sessionID)".utf8)).prefix(32)
    }

    private func sessionConversation(ownerID: String, sessionID: String, title: String) async throws -> String {
        let id = Self.conversationID(ownerID: ownerID, sessionID: sessionID)
        if try await engine.store.conversation(id: id, ownerID: ownerID) == nil {
            let now = nowMilliseconds()
            try await engine.store.ensureConversation(Conversation(
                id: id, ownerID: ownerID, title: String(title.prefix(80)), model: model, createdAt: now, updatedAt: now))
        }
        return id
    }

    // MARK: Requests

    /// `{prompt, session_id?, stream?}` as the seed's views read it.
    struct Prompt {
        var prompt: String
        var sessionID: String?
        var stream: Bool
    }

    private func readPrompt(_ request: Request) async throws -> Prompt {
        let json = try JSONValue.parse(try await collect(request).readableBytesView)
        guard json.objectValue != nil else {
            throw ChorusError.invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type")
        }
        guard let prompt = json["prompt"]?.stringValue, !prompt.isEmpty else {
            throw ChorusError.invalidRequest(message: "'prompt' is required and must be a non-empty string.", param: "prompt", code: "missing_required_parameter")
        }
        var sessionID: String?
        switch json["session_id"] {
        case nil, .null?: sessionID = nil
        case .string(let value)?: sessionID = value.isEmpty ? nil : value
        case .int(let value)?: sessionID = String(value)
        default:
            throw ChorusError.invalidRequest(message: "'session_id' must be a string.", param: "session_id", code: "invalid_type")
        }
        // The seed's ChatRecord keeps at most 100 characters of it.
        if let sessionID, sessionID.count > 100 {
            throw ChorusError.invalidRequest(message: "'session_id' must be at most 100 characters.", param: "session_id", code: "invalid_value")
        }
        var stream = true
        if let value = json["stream"], !value.isNull {
            guard let flag = value.boolValue else {
                throw ChorusError.invalidRequest(message: "'stream' must be a boolean.", param: "stream", code: "invalid_type")
            }
            stream = flag
        }
        return Prompt(prompt: prompt, sessionID: sessionID, stream: stream)
    }

    private func configuredModel() throws -> String {
        guard let model else {
            throw ChorusError.unavailable("no model answers SkillSpace's routes; set `skillspace.model` in the configuration")
        }
        return model
    }

    // MARK: POST /api/ai/qwen/

    @Sendable func chat(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let model = try configuredModel()
        let prompt = try await readPrompt(request)
        if let accounts, let principal = context.principal {
            try await accounts.admitChat(principal: principal, ip: context.clientIP)
        }
        // With a session the history comes from the database (the seed's ChatRecord); without
        // one the turn starts a conversation of its own.
        var conversationID: String?
        if let sessionID = prompt.sessionID {
            conversationID = try await sessionConversation(ownerID: context.ownerID, sessionID: sessionID, title: prompt.prompt)
        }
        var fields: [String: JSONValue] = [
            "model": .string(model), "stream": .bool(prompt.stream),
            "messages": .array([.object(["role": .string("user"), "content": .string(prompt.prompt)])]),
        ]
        if let conversationID { fields["conversation_id"] = .string(conversationID) }
        let turn = try await engine.prepare(try ChatRequest(json: .object(fields)), ownerID: context.ownerID, requestID: context.requestID)
        var headers = HTTPFields()
        if let conversation = turn.conversation { headers[.conversationID] = conversation.id }

        guard prompt.stream else {
            let output = try await engine.complete(turn)
            await settle(output, context: context)
            let answer = SkillSpaceAnswer(data: .init(
                answer: output.content, thinking: output.reasoning, sessionID: prompt.sessionID, conversationID: turn.conversation?.id))
            var response = try context.responseEncoder.encode(answer, from: request, context: context)
            response.headers.append(contentsOf: headers)
            return response
        }

        // The turn runs in its own task so that the status line waits for the first event: a
        // model that fails before answering gets a real error status, not a 200 with an error.
        let (events, continuation) = AsyncThrowingStream<ProviderEvent, any Error>.makeStream()
        let firstEvent = OneShot<(any Error)?>()
        let engine = self.engine
        // As in ChatCompletionsController: the drain may cut the turn at the end of its grace.
        let note = CancellationNote()
        let generation = Task {
            await CancellationNote.$current.withValue(note) {
                do {
                    let output = try await engine.stream(turn) { event in
                        firstEvent.set(nil)
                        continuation.yield(event)
                    }
                    await settle(output, context: context)
                    firstEvent.set(nil)
                    continuation.finish()
                } catch {
                    let cut = note.reason == ShutdownDrain.cutReason ? ShutdownDrain.cutError : error
                    firstEvent.set(cut)
                    continuation.finish(throwing: cut)
                }
            }
        }
        let (drain, drainKey) = (self.drain, drain?.opened {
            note.reason = ShutdownDrain.cutReason
            generation.cancel()
        })
        if let error = await firstEvent.value() {
            if let drainKey { drain?.closed(drainKey) }
            throw error
        }
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        headers[HTTPField.Name("X-Accel-Buffering")!] = "no"
        let cancelOnDisconnect = onDisconnect == .cancel
        let (metrics, logger) = (engine.metrics, context.logger)
        return Response(status: .ok, headers: headers, body: ResponseBody { writer in
            metrics.streamOpened("sse")
            defer {
                metrics.streamClosed("sse")
                if let drainKey { drain?.closed(drainKey) }
            }
            do {
                try await Self.writeTokens(events, to: &writer)
            } catch {
                // The client is gone (a write failed): stop the model unless told to finish detached.
                if cancelOnDisconnect { generation.cancel() }
                logger.info("stream client went away", metadata: ["error": "\(error)"])
                throw error
            }
            try await writer.finish(nil)
        })
    }

    /// The seed view's lines: `data: {"code":200,"token":…,"type":"thinking|answer"}` per token,
    /// then `type: finish`; a failure after the first token ends with `type: error`.
    private static func writeTokens(_ events: AsyncThrowingStream<ProviderEvent, any Error>, to writer: inout some ResponseBodyWriter) async throws {
        var items = events.makeAsyncIterator()
        while true {
            let next: ProviderEvent?
            do {
                next = try await items.next()
            } catch {
                let chorusError = (error as? ChorusError) ?? .internalError("\(error)")
                try await writer.write(sse(SkillSpaceWire.errorToken(chorusError.message)))
                return
            }
            guard let event = next else { break }
            switch event {
            case .reasoning(let text) where !text.isEmpty:
                try await writer.write(sse(SkillSpaceWire.token(text, type: "thinking")))
            case .content(let text) where !text.isEmpty:
                try await writer.write(sse(SkillSpaceWire.token(text, type: "answer")))
            default:
                continue
            }
        }
        try await writer.write(sse(SkillSpaceWire.token("", type: "finish")))
    }

    private static func sse(_ json: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(json.count + 8)
        buffer.writeString("data: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }

    private func settle(_ output: CompletionOutput, context: ChorusRequestContext) async {
        guard let accounts, let principal = context.principal, let usage = output.usage else { return }
        await accounts.settleChat(principal: principal, ip: context.clientIP, tokens: usage.totalTokens)
    }

    // MARK: POST /api/ai/qwen-async/

    /// A queued chat task (it runs on a worker), in the session's conversation (a new session
    /// when none is named, as the seed does).
    @Sendable func chatAsync(_ request: Request, context: ChorusRequestContext) async throws -> SkillSpaceAsyncAccepted {
        // The route needs `tasks` (AccessPolicy); a chat turn needs `chat` too.
        try context.require(.chat)
        let model = try configuredModel()
        let prompt = try await readPrompt(request)
        let sessionID = prompt.sessionID ?? UUID().uuidString.lowercased()
        var billing: JSONValue?
        if let accounts, let principal = context.principal {
            try await accounts.admitChat(principal: principal, ip: context.clientIP)
            billing = accounts.billing(principal: principal, ip: context.clientIP)
        }
        let conversationID = try await sessionConversation(ownerID: context.ownerID, sessionID: sessionID, title: prompt.prompt)
        var submission = TaskService<Store>.BatchSubmission(
            ownerID: context.ownerID, models: [model], messages: [ChatMessage(role: "user", text: prompt.prompt)],
            conversationID: conversationID, body: [:])
        submission.billing = billing
        let (_, tasks) = try await service.submit(submission)
        let taskID = tasks[0].id
        return SkillSpaceAsyncAccepted(data: .init(
            taskID: taskID, celeryTaskID: taskID, wsURL: Self.webSocketURL(request, context: context, taskID: taskID), sessionID: sessionID))
    }

    /// `ws://host/ws/ai/{task_id}/` from the request's own host, `wss://` when the client came
    /// over TLS (a trusted proxy's `X-Forwarded-Proto: https`).
    static func webSocketURL(_ request: Request, context: ChorusRequestContext, taskID: String) -> String {
        let scheme = context.viaHTTPS ? "wss" : "ws"
        // The Host header is the client's; anything but a host name and port is not put in a URL.
        var host = request.head.authority ?? ""
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]_")
        if host.isEmpty || host.count > 255 || !host.allSatisfy(allowed.contains) { host = "localhost" }
        return "\(scheme)://\(host)/ws/ai/\(taskID)/"
    }

    // MARK: WS /ws/ai/{task_id}/

    /// The consumer's messages `{"code":200,"token","type","task_id"}`, from the task's first
    /// event (a late client gets what it missed first), until `finish` or `error` (then the client
    /// closes, or the socket is closed `closeGrace` later);
    /// `{"type":"ping"}` is answered with `{"type":"pong"}`. Leaving never cancels the task.
    private func follow(_ task: TaskRecord, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let follower = try await TaskEventFeed(service: service).follow(task, after: 0)
        engine.metrics.streamOpened("websocket")
        defer { engine.metrics.streamClosed("websocket") }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for try await message in inbound.messages(maxSize: 64 * 1024) {
                    guard case .text(let text) = message else { continue }
                    if (try? JSONValue.parse(Array(text.utf8)))?["type"] == .string("ping") {
                        try await outbound.write(.text(#"{"type":"pong"}"#))
                    }
                }
            }
            group.addTask {
                for try await case .events(let events) in follower.items {
                    for event in events {
                        guard let message = Self.message(for: event) else { continue }
                        try await outbound.write(.text(String(decoding: message, as: UTF8.self)))
                    }
                }
                // The seed's front end closes the socket itself on `finish`, and its consumer never
                // does: a late client would race our close with its heartbeat. Closing is left to
                // the client for a while, then done here.
                try await Task.sleep(for: closeGrace)
                try await outbound.close(.normalClosure, reason: "task ended")
            }
            // The follower ends with the task (or the client leaves): stop the other side too.
            try await group.next()
            group.cancelAll()
        }
    }

    /// A task event as the seed's consumer sends it; nil for events it has no message for.
    static func message(for event: TaskEvent) -> [UInt8]? {
        switch event.kind {
        case .thinking, .answer:
            return SkillSpaceWire.token(event.token, type: event.kind.rawValue, taskID: event.taskID)
        case .finish:
            return SkillSpaceWire.token("", type: "finish", taskID: event.taskID)
        case .error:
            return SkillSpaceWire.errorToken(event.data?["message"]?.stringValue ?? "The task failed.", taskID: event.taskID)
        case .progress:
            // A worker's takeover restarts an answer, which the seed's messages cannot say; a
            // job's progress goes out with its `meta`.
            guard event.data?["restarted"]?.boolValue != true else { return nil }
            return SkillSpaceWire.token(event.token, type: "progress", taskID: event.taskID, meta: event.data)
        case .toolCalls, .log:
            // A job's output lines have no place in the seed's messages (its tasks had none).
            return nil
        }
    }

    // MARK: Celery-style tasks

    /// `{task_type, …params}`: `conversation.export`, or the name of a declared command job,
    /// submitted as `POST /v1/tasks` would submit `{"type":"command","params":{"name":…}}`.
    @Sendable func submit(_ request: Request, context: ChorusRequestContext) async throws -> SkillSpaceSubmitted {
        let json = try JSONValue.parse(try await collect(request).readableBytesView)
        guard case .object(var params) = json else {
            throw ChorusError.invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type")
        }
        guard let taskType = params.removeValue(forKey: "task_type")?.stringValue, !taskType.isEmpty else {
            throw ChorusError.invalidRequest(message: "'task_type' is required and must be a non-empty string.", param: "task_type", code: "missing_required_parameter")
        }
        let task: TaskRecord
        if taskType == "conversation.export" {
            task = try await service.submit(type: taskType, params: .object(params), ownerID: context.ownerID)
        } else {
            params["name"] = .string(taskType)
            task = try await service.submit(type: "command", params: .object(params), ownerID: context.ownerID)
        }
        return SkillSpaceSubmitted(taskID: task.id)
    }

    @Sendable func status(_ request: Request, context: ChorusRequestContext) async throws -> SkillSpaceTaskStatus {
        SkillSpaceTaskStatus(try await service.task(id: try context.parameters.require("task_id"), ownerID: context.visibleOwner))
    }

    private func collect(_ request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            throw ChorusError.payloadTooLarge(limit: maxBodyBytes)
        }
    }
}
