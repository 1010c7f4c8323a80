import ChorusRuntime
import ChorusStore
import Hummingbird

// `/readyz` and the admin views of queues, workers and dead letters.

/// `GET /readyz`: sent with 200 when the database and the queue answer, 503 otherwise.
struct Readiness: ResponseEncodable, Sendable {
    struct Checks: Encodable, Sendable {
        /// `ok` or `unavailable`.
        var database: String
        var queue: String
    }

    /// `ready`, `not_ready` or `draining` (after SIGTERM; the checks are then not run).
    var status: String
    var checks: Checks?

    init(databaseAnswers: Bool, queueAnswers: Bool) {
        status = databaseAnswers && queueAnswers ? "ready" : "not_ready"
        checks = Checks(database: databaseAnswers ? "ok" : "unavailable", queue: queueAnswers ? "ok" : "unavailable")
    }

    private init(status: String) {
        self.status = status
    }

    static var draining: Readiness { Readiness(status: "draining") }
}

/// One queue: what an autoscaler (KEDA's Redis Streams scaler) reads.
struct QueueObject: Encodable, Sendable {
    var queue: String
    var depth: Int
    var pending: Int
    var lag: Int
    var pendingTasks: Int

    init(_ stats: QueueStats, pendingTasks: Int) {
        queue = stats.model
        depth = stats.depth
        pending = stats.pending
        lag = stats.lag
        self.pendingTasks = pendingTasks
    }

    enum CodingKeys: String, CodingKey {
        case queue, depth, pending, lag, pendingTasks = "pending_tasks"
    }
}

/// A worker process and how long ago it last said it was alive.
struct WorkerObject: Encodable, Sendable {
    var id: String
    var queues: [String]
    var host: String
    var pid: Int
    var startedAt: Int64
    var lastHeartbeatMillisecondsAgo: Int64

    init(_ worker: WorkerRecord, now: Int64) {
        id = worker.id
        queues = worker.models
        host = worker.host
        pid = worker.pid
        startedAt = worker.startedAt / 1000
        lastHeartbeatMillisecondsAgo = now - worker.heartbeatAt
    }

    enum CodingKeys: String, CodingKey {
        case id, queues, host, pid, startedAt = "started_at", lastHeartbeatMillisecondsAgo = "last_heartbeat_ms_ago"
    }
}

/// A queue entry given up on after too many deliveries.
struct DeadLetterObject: Encodable, Sendable {
    var id: String
    var queue: String
    var entryID: String
    @Nullable var taskID: String?
    var payload: String
    var reason: String
    var deliveries: Int
    var createdAt: Int64

    init(_ letter: DeadLetter) {
        id = letter.id
        queue = letter.stream
        entryID = letter.entryID
        taskID = letter.taskID
        payload = letter.payload
        reason = letter.reason
        deliveries = letter.deliveries
        createdAt = letter.createdAt / 1000
    }

    enum CodingKeys: String, CodingKey {
        case id, queue, entryID = "entry_id", taskID = "task_id", payload, reason, deliveries, createdAt = "created_at"
    }
}
