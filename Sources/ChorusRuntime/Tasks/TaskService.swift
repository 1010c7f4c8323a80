public import ChorusCore
import ChorusProviders
public import ChorusStore
import Foundation
import Tracing
public import Logging

/// Accepts asynchronous work: writes it to the database (the source of truth) first, then names
/// it on its queue. If the queue is down the task still counts as accepted: the reconciler
/// queues it once the queue is back.
public struct TaskService<Store: ConversationStore>: Sendable {
    public static var genericQueue: String { "_tasks" }

    public let tasks: SQLTaskStore
    public let conversations: Store
    public let queue: any TaskQueue
    public let bus: any TaskEventBus
    public let models: ModelRegistry
    public let handlers: [String: any TaskHandler]
    let logger: Logger

    public init(tasks: SQLTaskStore, conversations: Store, queue: any TaskQueue, bus: any TaskEventBus, models: ModelRegistry, handlers: [any TaskHandler], logger: Logger) {
        self.tasks = tasks
        self.conversations = conversations
        self.queue = queue
        self.bus = bus
        self.models = models
        self.handlers = Dictionary(handlers.map { ($0.type, $0) }, uniquingKeysWith: { first, _ in first })
        self.logger = logger
    }

    /// A prompt to answer by several models in one conversation: the user message is stored once,
    /// then one `chat` task per model.
    public struct BatchSubmission: Sendable {
        public var ownerID: String
        public var models: [String]
        /// The new user message(s) and any system instructions; none to answer the conversation's
        /// last user message again (regenerate).
        public var messages: [ChatMessage]
        public var conversationID: String?
        /// Sampling parameters and other upstream fields, forwarded as they are.
        public var body: [String: JSONValue]
        /// Who pays for the tokens (see `AuthService.billing`); kept with each task.
        public var billing: JSONValue?
        /// How many of the batch's tasks may run at once (nil: all); `BatchSlots` enforces it.
        public var maxConcurrent: Int?

        public init(ownerID: String, models: [String], messages: [ChatMessage], conversationID: String?, body: [String: JSONValue]) {
            self.ownerID = ownerID
            self.models = models
            self.messages = messages
            self.conversationID = conversationID
            self.body = body
        }
    }

    public func submit(_ submission: BatchSubmission) async throws -> (BatchRecord, [TaskRecord]) {
        guard !submission.models.isEmpty else {
            throw ChorusError.invalidRequest(message: "At least one model is required.", param: "models", code: "missing_required_parameter")
        }
        var submission = submission
        for (index, model) in submission.models.enumerated() {
            guard let entry = models[model] else { throw ChorusError.modelNotFound(model) }
            try entry.check(UpstreamRequest(body: submission.body, requestID: ""))
            // An alias runs as its model: queues are per model name.
            submission.models[index] = entry.configuration.name
        }
        guard Set(submission.models).count == submission.models.count else {
            throw ChorusError.invalidRequest(message: "Each model may appear once in a batch.", param: "models", code: "invalid_value")
        }
        let now = nowMilliseconds()
        let batchID = Identifier.ordered("batch_")
        let instructions = submission.messages.filter { $0.role == "system" || $0.role == "developer" }
        let userMessages = submission.messages.filter { $0.role != "system" && $0.role != "developer" }
        let stored = userMessages.map { StoredMessage(client: $0, ownerID: submission.ownerID, turnID: batchID, now: now) }
        var body = submission.body
        body["messages"] = nil
        var fields: [String: JSONValue] = ["body": .object(body), "instructions": .array(instructions.map(\.json)), "billing": submission.billing ?? .null]
        if let limit = submission.maxConcurrent, limit < submission.models.count { fields["batch_concurrency"] = .int(limit) }
        // A new conversation's history is exactly this batch's messages: a small one travels in
        // the task, so the worker's first attempt goes from claim to upstream without a read.
        if submission.conversationID == nil, stored.allSatisfy({ $0.parts == nil }),
           stored.reduce(0, { $0 + $1.content.utf8.count }) <= Self.carriedHistoryBytes {
            fields["history"] = .array(ConversationHistory.upstreamMessages(stored))
        }
        let params: JSONValue = .object(fields)
        let ownerID = submission.ownerID
        let modelNames = submission.models
        // The user message, the batch and its tasks: one commit.
        let (_, batch, records) = try await withSpan("store.write") { span in
            span.attributes["chorus.write"] = "batch"
            return try await conversations.startBatch(TurnStart(
                ownerID: ownerID, conversationID: submission.conversationID, newConversationID: Identifier.ordered("conv_"),
                title: userMessages.first.map { String($0.text.prefix(80)) }, model: modelNames.joined(separator: ","),
                messages: stored, now: now)
            ) { conversation in
                let batch = BatchRecord(id: batchID, ownerID: ownerID, conversationID: conversation.id, models: modelNames, createdAt: now)
                let records = modelNames.map { model in
                    TaskRecord(
                        id: Identifier.ordered("task_"), ownerID: ownerID, batchID: batchID, type: "chat", model: model,
                        params: params, conversationID: conversation.id, createdAt: now, updatedAt: now)
                }
                return (batch, records)
            }
        }
        await enqueue(records)
        return (batch, records)
    }

    /// The largest new conversation (text only) whose messages are carried in its tasks.
    static var carriedHistoryBytes: Int { 16 * 1024 }

    /// A generic task: `type` names a handler, `params` are its input.
    public func submit(type: String, params: JSONValue, ownerID: String) async throws -> TaskRecord {
        guard let handler = handlers[type], type != "chat" else {
            let known = handlers.keys.filter { $0 != "chat" }.sorted().joined(separator: ", ")
            throw ChorusError.invalidRequest(message: "Unknown task type '\(type)'. Known types: \(known).", param: "type", code: "invalid_value")
        }
        let params = try handler.prepare(params: params)
        let now = nowMilliseconds()
        let record = TaskRecord(id: Identifier.ordered("task_"), ownerID: ownerID, type: type, model: handler.queue ?? Self.genericQueue, params: params, createdAt: now, updatedAt: now)
        try await withSpan("store.write") { span in
            span.attributes["chorus.write"] = "task"
            try await tasks.create(batch: nil, tasks: [record])
        }
        await enqueue([record])
        return record
    }

    private func enqueue(_ records: [TaskRecord]) async {
        for record in records {
            do {
                let carry = handlers[record.type]?.startsBeforeClaim == true
                // The entry carries this span's trace context: the worker's run continues it.
                try await withSpan("queue.submit", ofKind: .producer) { span in
                    span.attributes["chorus.task_id"] = record.id
                    span.attributes["messaging.destination.name"] = record.model
                    try await queue.enqueue(taskID: record.id, model: record.model, carrying: carry ? record : nil)
                }
            } catch {
                logger.warning("could not queue a task; the reconciler will", metadata: ["task_id": "\(record.id)", "error": "\(error)"])
            }
        }
    }

    public func task(id: String, ownerID: String?) async throws -> TaskRecord {
        guard let task = try await tasks.task(id: id, ownerID: ownerID) else { throw ChorusError.notFound(what: "task", id: id) }
        return task
    }

    public func batch(id: String, ownerID: String?) async throws -> (BatchRecord, [TaskRecord]) {
        guard let batch = try await tasks.batch(id: id, ownerID: ownerID) else { throw ChorusError.notFound(what: "batch", id: id) }
        return (batch, try await tasks.tasks(batchID: id))
    }

    /// Cancels a task: at once if it has not started, else its worker stops the upstream call,
    /// saves the partial answer and marks it cancelled.
    public func cancel(id: String, ownerID: String?) async throws -> TaskRecord {
        guard let task = try await tasks.requestCancel(taskID: id, ownerID: ownerID) else { throw ChorusError.notFound(what: "task", id: id) }
        if task.state == .cancelled, try await bus.lastSequence(taskID: id) == 0 {
            // It never started: its followers learn it here.
            try? await bus.publish(TaskEvent(seq: 1, taskID: id, kind: .error, data: task.error))
        }
        return task
    }

    /// The JSON of a task, Celery-style.
    public static func render(_ task: TaskRecord) -> JSONValue {
        var meta: [String: JSONValue] = [:]
        if let current = task.progressCurrent { meta["current"] = .int(current) }
        if let total = task.progressTotal { meta["total"] = .int(total) }
        var json = fields(task, meta: meta)
        if task.type == "command" { json["artifacts_url"] = .string("/v1/tasks/\(task.id)/artifacts") }
        return .object(json)
    }

    private static func fields(_ task: TaskRecord, meta: [String: JSONValue]) -> [String: JSONValue] {
        [
            "id": .string(task.id), "object": .string("task"), "type": .string(task.type),
            "state": .string(task.state.rawValue),
            "model": task.model.hasPrefix("_") ? .null : .string(task.model),  // `_tasks`, `_commands`: no model
            "batch_id": task.batchID.map(JSONValue.string) ?? .null,
            "conversation_id": task.conversationID.map(JSONValue.string) ?? .null,
            "meta": .object(meta),
            "result": task.result ?? .null,
            "error": task.error ?? .null,
            "attempts": .int(task.attempts),
            "created_at": .int(Int(task.createdAt / 1000)),
            "started_at": task.startedAt.map { .int(Int($0 / 1000)) } ?? .null,
            "finished_at": task.finishedAt.map { .int(Int($0 / 1000)) } ?? .null,
            "events_url": .string("/v1/tasks/\(task.id)/events"),
            "ws_url": .string("/v1/tasks/\(task.id)/ws"),
        ]
    }
}
