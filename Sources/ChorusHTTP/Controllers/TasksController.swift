import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOWebSocket
import ServiceLifecycle
import NIOCore

/// `/v1/tasks` and `/v1/batches`: asynchronous work, its state, its events (SSE), cancellation.
struct TasksController<Store: ConversationStore>: Sendable {
    let service: TaskService<Store>
    let idempotency: Idempotency
    let maxBodyBytes: Int
    /// Counts the event streams open (SSE and WebSocket).
    let metrics: ChorusMetrics
    var keepAliveInterval: Duration = .seconds(15)
    /// Token limits and budgets, checked before chat tasks are queued and charged when they end.
    var accounts: AuthService?

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.post("/v1/batches", use: createBatch)
        router.get("/v1/batches/:id", use: showBatch)
        router.post("/v1/tasks", use: createTask)
        router.get("/v1/tasks/:id", use: showTask)
        router.get("/v1/tasks/:id/events", use: events)
        router.post("/v1/tasks/:id/cancel", use: cancel)
        router.get("/v1/tasks/:id/artifacts", use: artifacts)
        router.get("/v1/tasks/:id/artifacts/:name", use: artifact)
        router.ws("/v1/tasks/:id/ws", shouldUpgrade: { request, context in
            // Only the owner may follow (a 404 for anyone else, before the upgrade).
            _ = try await service.task(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            let task = try await service.task(id: try context.requestContext.parameters.require("id"), ownerID: context.requestContext.visibleOwner)
            try await cancelWhenGracefulShutdown {
                try await followOverWebSocket(task, inbound: inbound, outbound: outbound)
            }
        })
    }

    /// The task's events as text frames (the same JSON as the SSE `data:`), from the start;
    /// `{"type":"ping"}` is answered with `{"type":"pong"}`. Leaving never cancels the task.
    private func followOverWebSocket(_ task: TaskRecord, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async throws {
        let follower = try await TaskEventFeed(service: service).follow(task, after: 0)
        metrics.streamOpened("websocket")
        defer { metrics.streamClosed("websocket") }
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
                        try await outbound.write(.text(String(decoding: try event.json.encoded(), as: UTF8.self)))
                    }
                }
                try await outbound.close(.normalClosure, reason: "task ended")
            }
            // The follower ends with the task (or the client leaves): stop the other side too.
            try await group.next()
            group.cancelAll()
        }
    }

    // MARK: Batches

    @Sendable func createBatch(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await collect(request)
        let json = try JSONValue.parse(body.readableBytesView)
        guard case .object(var fields) = json else {
            throw ChorusError.invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type")
        }
        guard let models = fields.removeValue(forKey: "models")?.arrayValue?.compactMap(\.stringValue), !models.isEmpty else {
            throw ChorusError.invalidRequest(message: "'models' must be a non-empty array of model names.", param: "models", code: "invalid_value")
        }
        var messages: [ChatMessage]
        let regenerate = fields.removeValue(forKey: "regenerate")
        if let regenerate, regenerate.boolValue == nil, !regenerate.isNull {
            throw ChorusError.invalidRequest(message: "'regenerate' must be a boolean.", param: "regenerate", code: "invalid_type")
        }
        if regenerate?.boolValue == true {
            // New answers to the conversation's last user message: no new message.
            guard fields["conversation_id"]?.stringValue != nil else {
                throw ChorusError.invalidRequest(message: "'regenerate' needs a 'conversation_id'.", param: "conversation_id", code: "missing_required_parameter")
            }
            guard fields["prompt"] == nil, fields["messages"] == nil else {
                throw ChorusError.invalidRequest(message: "'regenerate' takes no 'prompt' or 'messages'.", param: "regenerate", code: "invalid_value")
            }
            messages = []
        } else if let prompt = fields.removeValue(forKey: "prompt") {
            guard let text = prompt.stringValue, !text.isEmpty else {
                throw ChorusError.invalidRequest(message: "'prompt' must be a non-empty string.", param: "prompt", code: "invalid_type")
            }
            messages = [ChatMessage(role: "user", text: text)]
        } else if fields["messages"] != nil {
            // Validate the messages exactly as a chat request would.
            var probe = fields
            probe["model"] = .string(models[0])
            messages = try ChatRequest(json: .object(probe)).messages
        } else {
            throw ChorusError.invalidRequest(message: "Give either 'prompt' or 'messages'.", param: "prompt", code: "missing_required_parameter")
        }
        fields["messages"] = nil
        let conversationID = try fields.removeValue(forKey: "conversation_id").flatMap { value -> String? in
            if value.isNull { return nil }
            guard let id = value.stringValue, !id.isEmpty else {
                throw ChorusError.invalidRequest(message: "'conversation_id' must be a string.", param: "conversation_id", code: "invalid_type")
            }
            return id
        }
        if let fileIDs = fields.removeValue(forKey: "files") {
            guard let ids = fileIDs.arrayValue?.compactMap(\.stringValue) else {
                throw ChorusError.invalidRequest(message: "'files' must be an array of file ids.", param: "files", code: "invalid_type")
            }
            messages = try await attach(fileIDs: ids, to: messages, ownerID: context.ownerID)
        }
        fields["stream"] = nil
        fields["stream_options"] = nil
        // Seed 003's name for how many of the batch's tasks run at once.
        let maxConcurrent = try fields.removeValue(forKey: "gemini_concurrency").flatMap { value -> Int? in
            if value.isNull { return nil }
            guard let limit = value.intValue, (1...64).contains(limit) else {
                throw ChorusError.invalidRequest(message: "'gemini_concurrency' must be an integer from 1 to 64.", param: "gemini_concurrency", code: "invalid_value")
            }
            return limit
        }
        // The tasks' chat bodies: checked now, as a chat request's would be, not on the worker.
        if let cache = fields["cache"] { try ChatRequest.validateCache(cache) }
        var submission = TaskService<Store>.BatchSubmission(ownerID: context.ownerID, models: models, messages: messages, conversationID: conversationID, body: fields)
        submission.maxConcurrent = maxConcurrent
        submission.billing = try await admitChat(context)
        return try await idempotency.run(request, body: body, ownerID: context.ownerID) {
            let (batch, tasks) = try await service.submit(submission)
            return (.accepted, Self.renderSubmission(batch, tasks))
        }
    }

    @Sendable func showBatch(_ request: Request, context: ChorusRequestContext) async throws -> BatchObject {
        let (batch, tasks) = try await service.batch(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
        return BatchObject(
            id: batch.id, conversationID: batch.conversationID, status: tasks.allSatisfy(\.state.isTerminal) ? "completed" : "in_progress",
            createdAt: batch.createdAt / 1000, tasks: tasks.map { TaskObject(json: TaskService<Store>.render($0)) })
    }

    static func renderSubmission(_ batch: BatchRecord, _ tasks: [TaskRecord]) -> JSONValue {
        .object([
            "batch_id": .string(batch.id),
            "conversation_id": .string(batch.conversationID),
            "message": .string("Tasks dispatched successfully"),
            "task_ids": .array(tasks.map { .string($0.id) }),
            "tasks": .array(tasks.map { task in
                .object([
                    "id": .string(task.id), "model": .string(task.model),
                    "status_url": .string("/v1/tasks/\(task.id)"), "events_url": .string("/v1/tasks/\(task.id)/events"),
                    "ws_url": .string("/v1/tasks/\(task.id)/ws"),
                ])
            }),
            "batch_url": .string("/v1/batches/\(batch.id)"),
        ])
    }

    /// Images become image parts (data URLs, resolved on the worker from the stored file); text
    /// documents become text parts.
    /// Checks the caller's token limits and budgets before chat work is queued; returns who pays.
    func admitChat(_ context: ChorusRequestContext) async throws -> JSONValue? {
        guard let accounts, let principal = context.principal else { return nil }
        try await accounts.admitChat(principal: principal, ip: context.clientIP)
        return accounts.billing(principal: principal, ip: context.clientIP)
    }

    func attach(fileIDs: [String], to messages: [ChatMessage], ownerID: String) async throws -> [ChatMessage] {
        guard !fileIDs.isEmpty else { return messages }
        guard let last = messages.lastIndex(where: { $0.role == "user" }) else { return messages }
        var parts: [JSONValue]
        switch messages[last].content {
        case .array(let existing): parts = existing
        default: parts = [.object(["type": .string("text"), "text": .string(messages[last].text)])]
        }
        for id in fileIDs {
            guard let file = try await service.tasks.file(id: id, ownerID: ownerID) else { throw ChorusError.notFound(what: "file", id: id) }
            parts.append(FileRules.contentPart(for: file))
        }
        var updated = messages
        updated[last] = ChatMessage(role: "user", content: .array(parts))
        return updated
    }

    // MARK: Tasks

    @Sendable func createTask(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await collect(request)
        let json = try JSONValue.parse(body.readableBytesView)
        guard let type = json["type"]?.stringValue else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'type'.", param: "type", code: "missing_required_parameter")
        }
        let params = json["params"] ?? .object([:])
        guard params.objectValue != nil else {
            throw ChorusError.invalidRequest(message: "'params' must be an object.", param: "params", code: "invalid_type")
        }
        return try await idempotency.run(request, body: body, ownerID: context.ownerID) {
            let task = try await service.submit(type: type, params: params, ownerID: context.ownerID)
            return (.accepted, TaskService<Store>.render(task))
        }
    }

    @Sendable func showTask(_ request: Request, context: ChorusRequestContext) async throws -> TaskObject {
        let task = try await service.task(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
        return TaskObject(json: TaskService<Store>.render(task))
    }

    @Sendable func cancel(_ request: Request, context: ChorusRequestContext) async throws -> TaskObject {
        let task = try await service.cancel(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
        return TaskObject(json: TaskService<Store>.render(task))
    }

    /// The files a command task left in its output folder: name, size, content type.
    @Sendable func artifacts(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let task = try await service.task(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
        let list = try await service.tasks.artifacts(taskID: task.id, ownerID: nil)
        let body: JSONValue = .object([
            "object": .string("list"),
            "data": .array(list.map { artifact in
                .object([
                    "object": .string("task.artifact"), "name": .string(artifact.name), "size": .int(artifact.size),
                    "content_type": .string(artifact.contentType), "created_at": .int(Int(artifact.createdAt / 1000)),
                    "url": .string("/v1/tasks/\(task.id)/artifacts/\(artifact.name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? artifact.name)"),
                ])
            }),
        ])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: try body.encoded())))
    }

    /// One artifact's bytes, as a download: what a job wrote is untrusted, so it is never rendered
    /// inline or sniffed as another type.
    @Sendable func artifact(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let task = try await service.task(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
        let raw = try context.parameters.require("name")
        let name = raw.removingPercentEncoding ?? raw
        guard let artifact = try await service.tasks.artifact(taskID: task.id, name: name, ownerID: nil) else {
            throw ChorusError.notFound(what: "artifact", id: name)
        }
        let quoted = String(artifact.name.unicodeScalars.map { $0.isASCII && $0 != "\"" && $0 != "\\" && $0.value >= 0x20 ? Character($0) : "_" })
        return Response(
            status: .ok,
            headers: [
                .contentType: artifact.contentType, .contentDisposition: "attachment; filename=\"\(quoted)\"",
                HTTPField.Name("X-Content-Type-Options")!: "nosniff",
            ],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: artifact.content)))
    }

    /// SSE of the task's events: `id:` is the sequence number; `Last-Event-ID` (or `?after=`)
    /// resumes after it with no gap and no duplicate; a late client replays from the start.
    /// Leaving never cancels the task.
    @Sendable func events(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let task = try await service.task(id: try context.parameters.require("id"), ownerID: context.visibleOwner)
        let resumeFrom = request.headers[.lastEventID] ?? request.uri.queryParameters["after"].map(String.init)
        var after = 0
        if let resumeFrom {
            guard let value = Int(resumeFrom), value >= 0 else {
                throw ChorusError.invalidRequest(message: "Last-Event-ID must be an event sequence number.", param: "Last-Event-ID", code: "invalid_value")
            }
            after = value
        }
        let follower = try await TaskEventFeed(service: service).follow(task, after: after, keepAlive: keepAliveInterval)
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"],
            body: ResponseBody { [metrics] writer in
                metrics.streamOpened("sse")
                defer { metrics.streamClosed("sse") }
                // On shutdown the stream ends (the client resumes elsewhere with Last-Event-ID)
                // instead of holding the server until the task ends.
                try await withGracefulShutdownHandler {
                    for try await item in follower.items {
                        switch item {
                        case .events(let events):
                            // What one read found goes out in one write.
                            var buffer = ByteBuffer()
                            for event in events {
                                buffer.writeString("id: \(event.seq)\nevent: \(event.kind.rawValue)\ndata: ")
                                buffer.writeBytes(try event.json.encoded())
                                buffer.writeString("\n\n")
                            }
                            try await writer.write(buffer)
                        case .keepAlive:
                            try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                        }
                    }
                } onGracefulShutdown: {
                    follower.end()
                }
                try await writer.finish(nil)
            })
    }

    private func collect(_ request: Request) async throws -> ByteBuffer {
        do {
            return try await request.body.collect(upTo: maxBodyBytes)
        } catch {
            throw ChorusError.payloadTooLarge(limit: maxBodyBytes)
        }
    }
}
