import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird
import NIOCore
import SQLKit

/// `/readyz` and the admin views of queues, workers and dead letters.
struct OperationsController<Store: ConversationStore>: Sendable {
    let service: TaskService<Store>
    let database: any SQLDatabase
    /// Every queue: the models and the generic task queue.
    let queues: [String]

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/readyz", use: ready)
        router.get("/v1/admin/queues", use: queueStats)
        router.get("/v1/admin/workers", use: workers)
        router.get("/v1/admin/dead-letters", use: deadLetters)
    }

    /// Ready when the database and the queue answer.
    @Sendable func ready(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        var checks: [String: JSONValue] = [:]
        var ok = true
        do {
            _ = try await database.raw("SELECT 1 AS one").first()
            checks["database"] = .string("ok")
        } catch {
            ok = false
            checks["database"] = .string("unavailable")
        }
        do {
            try await service.queue.ping()
            checks["queue"] = .string("ok")
        } catch {
            ok = false
            checks["queue"] = .string("unavailable")
        }
        return try Idempotency.response(ok ? .ok : .serviceUnavailable, .object(["status": .string(ok ? "ready" : "not_ready"), "checks": .object(checks)]))
    }

    /// Depth, pending and lag per queue: what an autoscaler (KEDA's Redis Streams scaler) reads.
    @Sendable func queueStats(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let stats = try await service.queue.stats(models: queues)
        let pendingTasks = try await database.raw("SELECT model, COUNT(*) AS n FROM tasks WHERE status = 'PENDING' GROUP BY model").all()
        var pendingByModel: [String: Int] = [:]
        for row in pendingTasks {
            pendingByModel[try row.decode(column: "model", as: String.self)] = Int(try row.decode(column: "n", as: Int64.self))
        }
        return try Idempotency.response(.ok, .object(["object": .string("list"), "data": .array(stats.map { stat in
            .object([
                "queue": .string(stat.model), "depth": .int(stat.depth), "pending": .int(stat.pending), "lag": .int(stat.lag),
                "pending_tasks": .int(pendingByModel[stat.model] ?? 0),
            ])
        })]))
    }

    @Sendable func workers(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let now = nowMilliseconds()
        let workers = try await service.tasks.workers()
        return try Idempotency.response(.ok, .object(["object": .string("list"), "data": .array(workers.map { worker in
            .object([
                "id": .string(worker.id), "queues": .array(worker.models.map(JSONValue.string)), "host": .string(worker.host),
                "pid": .int(worker.pid), "started_at": .int(Int(worker.startedAt / 1000)),
                "last_heartbeat_ms_ago": .int(Int(now - worker.heartbeatAt)),
            ])
        })]))
    }

    @Sendable func deadLetters(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let letters = try await service.tasks.deadLetters(limit: 200)
        return try Idempotency.response(.ok, .object(["object": .string("list"), "data": .array(letters.map { letter in
            .object([
                "id": .string(letter.id), "queue": .string(letter.stream), "entry_id": .string(letter.entryID),
                "task_id": letter.taskID.map(JSONValue.string) ?? .null, "payload": .string(letter.payload),
                "reason": .string(letter.reason), "deliveries": .int(letter.deliveries),
                "created_at": .int(Int(letter.createdAt / 1000)),
            ])
        })]))
    }
}
