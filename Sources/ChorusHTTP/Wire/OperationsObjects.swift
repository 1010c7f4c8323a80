import ChorusCore
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

/// A worker process, how long ago it last said it was alive, and the tasks it holds now.
struct WorkerObject: Encodable, Sendable {
    /// A task a worker holds: enough to find it (`GET /v1/tasks/{id}` with `admin:data`).
    struct CurrentTask: Encodable, Sendable {
        var id: String
        var model: String
        var state: String
        var attempts: Int
        @Nullable var startedAt: Int64?

        init(_ task: TaskRecord) {
            id = task.id
            model = task.model
            state = task.state.rawValue
            attempts = task.attempts
            startedAt = task.startedAt.map { $0 / 1000 }
        }

        enum CodingKeys: String, CodingKey {
            case id, model, state, attempts, startedAt = "started_at"
        }
    }

    var id: String
    var queues: [String]
    var host: String
    var pid: Int
    var startedAt: Int64
    var lastHeartbeatMillisecondsAgo: Int64
    var currentTasks: [CurrentTask]

    init(_ worker: WorkerRecord, now: Int64, currentTasks: [TaskRecord] = []) {
        id = worker.id
        queues = worker.models
        host = worker.host
        pid = worker.pid
        startedAt = worker.startedAt / 1000
        lastHeartbeatMillisecondsAgo = now - worker.heartbeatAt
        self.currentTasks = currentTasks.map(CurrentTask.init)
    }

    enum CodingKeys: String, CodingKey {
        case id, queues, host, pid, startedAt = "started_at", lastHeartbeatMillisecondsAgo = "last_heartbeat_ms_ago"
        case currentTasks = "current_tasks"
    }
}
