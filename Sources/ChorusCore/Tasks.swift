/// A task's state, with Celery's names (what `GET /v1/tasks/{id}` reports).
public enum TaskState: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case started = "STARTED"
    case progress = "PROGRESS"
    case success = "SUCCESS"
    case failure = "FAILURE"
    case cancelled = "CANCELLED"

    public var isTerminal: Bool { self == .success || self == .failure || self == .cancelled }
}

/// A unit of asynchronous work. The tasks table is the source of truth; queues only name tasks.
public struct TaskRecord: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var batchID: String?
    /// `chat`, or the name of a generic task handler.
    public var type: String
    /// The model that serves it; its queue.
    public var model: String
    public var state: TaskState
    public var params: JSONValue
    public var result: JSONValue?
    public var error: JSONValue?
    public var progressCurrent: Int?
    public var progressTotal: Int?
    public var conversationID: String?
    public var attempts: Int
    public var workerID: String?
    /// Milliseconds; a running task whose lease passed belongs to a dead worker.
    public var leaseUntil: Int64?
    public var cancelRequested: Bool
    public var createdAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?
    public var updatedAt: Int64

    public init(
        id: String, ownerID: String, batchID: String? = nil, type: String, model: String, state: TaskState = .pending,
        params: JSONValue, result: JSONValue? = nil, error: JSONValue? = nil, progressCurrent: Int? = nil,
        progressTotal: Int? = nil, conversationID: String? = nil, attempts: Int = 0, workerID: String? = nil,
        leaseUntil: Int64? = nil, cancelRequested: Bool = false, createdAt: Int64, startedAt: Int64? = nil,
        finishedAt: Int64? = nil, updatedAt: Int64
    ) {
        self.id = id
        self.ownerID = ownerID
        self.batchID = batchID
        self.type = type
        self.model = model
        self.state = state
        self.params = params
        self.result = result
        self.error = error
        self.progressCurrent = progressCurrent
        self.progressTotal = progressTotal
        self.conversationID = conversationID
        self.attempts = attempts
        self.workerID = workerID
        self.leaseUntil = leaseUntil
        self.cancelRequested = cancelRequested
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.updatedAt = updatedAt
    }
}

extension TaskRecord {
    /// What a queue entry may carry beside the task's id: the fields a handler reads, as they were
    /// at submission. A worker that gets a task's first delivery can begin its run from this copy
    /// while its claim is on the way to the database (see `TaskWorker.handle`).
    public var carried: JSONValue {
        .object([
            "id": .string(id), "owner_id": .string(ownerID), "batch_id": batchID.map(JSONValue.string) ?? .null,
            "type": .string(type), "model": .string(model), "params": params,
            "conversation_id": conversationID.map(JSONValue.string) ?? .null, "created_at": .int(Int(createdAt)),
        ])
    }

    /// A pending task from `carried`; nil when a field is missing or of the wrong type.
    public init?(carried: JSONValue) {
        guard let id = carried["id"]?.stringValue, let ownerID = carried["owner_id"]?.stringValue,
              let type = carried["type"]?.stringValue, let model = carried["model"]?.stringValue,
              let params = carried["params"], let createdAt = carried["created_at"]?.intValue
        else { return nil }
        self.init(
            id: id, ownerID: ownerID, batchID: carried["batch_id"]?.stringValue, type: type, model: model, params: params,
            conversationID: carried["conversation_id"]?.stringValue, createdAt: Int64(createdAt), updatedAt: Int64(createdAt))
    }
}

/// One prompt fanned out to several models in one conversation.
public struct BatchRecord: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var conversationID: String
    public var models: [String]
    public var createdAt: Int64

    public init(id: String, ownerID: String, conversationID: String, models: [String], createdAt: Int64) {
        self.id = id
        self.ownerID = ownerID
        self.conversationID = conversationID
        self.models = models
        self.createdAt = createdAt
    }
}
