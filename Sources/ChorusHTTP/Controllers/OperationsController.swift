import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird
import SQLKit

/// `/readyz` and the admin views of queues and workers (dead letters: `DeadLettersController`).
struct OperationsController<Store: ConversationStore>: Sendable {
    let service: TaskService<Store>
    let database: any SQLDatabase
    /// Every queue: the models and the generic task queue.
    let queues: [String]
    /// Set on SIGTERM: not ready from then on, so that load balancers stop sending work.
    var drain: ShutdownDrain?

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/readyz", use: ready)
        router.get("/v1/admin/queues", use: queueStats)
        router.get("/v1/admin/workers", use: workers)
    }

    /// Ready when the database and the queue answer, and the process is not draining.
    @Sendable func ready(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<Readiness> {
        if drain?.isDraining == true {
            return Readiness.draining.withStatus(.serviceUnavailable)
        }
        let databaseAnswers: Bool
        do {
            _ = try await database.raw("SELECT 1 AS one").first()
            databaseAnswers = true
        } catch {
            databaseAnswers = false
        }
        let queueAnswers: Bool
        do {
            try await service.queue.ping()
            queueAnswers = true
        } catch {
            queueAnswers = false
        }
        return Readiness(databaseAnswers: databaseAnswers, queueAnswers: queueAnswers)
            .withStatus(databaseAnswers && queueAnswers ? .ok : .serviceUnavailable)
    }

    /// Depth, pending and lag per queue: what an autoscaler (KEDA's Redis Streams scaler) reads.
    @Sendable func queueStats(_ request: Request, context: ChorusRequestContext) async throws -> ListObject<QueueObject> {
        let stats = try await service.queue.stats(models: queues)
        let pendingTasks = try await database.raw("SELECT model, COUNT(*) AS n FROM tasks WHERE status = 'PENDING' GROUP BY model").all()
        var pendingByModel: [String: Int] = [:]
        for row in pendingTasks {
            pendingByModel[try row.decode(column: "model", as: String.self)] = Int(try row.decode(column: "n", as: Int64.self))
        }
        return ListObject(stats.map { QueueObject($0, pendingTasks: pendingByModel[$0.model] ?? 0) })
    }

    @Sendable func workers(_ request: Request, context: ChorusRequestContext) async throws -> ListObject<WorkerObject> {
        let now = nowMilliseconds()
        let held = Dictionary(grouping: try await service.tasks.runningTasks(), by: { $0.workerID ?? "" })
        return ListObject(try await service.tasks.workers().map { WorkerObject($0, now: now, currentTasks: held[$0.id] ?? []) })
    }
}
