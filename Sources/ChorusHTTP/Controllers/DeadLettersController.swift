import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird

/// `/v1/admin/dead-letters`: inspect, replay, delete and purge the queue entries given up on
/// (the `admin:ops` permission, as every `/v1/admin` route; the audit log records each change,
/// as it does every mutating request).
struct DeadLettersController<Store: ConversationStore>: Sendable {
    let service: TaskService<Store>

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/v1/admin/dead-letters", use: list)
        router.delete("/v1/admin/dead-letters", use: purge)
        router.get("/v1/admin/dead-letters/:id", use: show)
        router.delete("/v1/admin/dead-letters/:id", use: delete)
        router.post("/v1/admin/dead-letters/:id/replay", use: replay)
    }

    /// Newest first; `?queue=` keeps one queue's, `?limit=` (1 to 500, default 200).
    @Sendable func list(_ request: Request, context: ChorusRequestContext) async throws -> ListObject<DeadLetterObject> {
        var limit = 200
        if let text = request.uri.queryParameters["limit"] {
            guard let value = Int(text), (1...500).contains(value) else {
                throw ChorusError.invalidRequest(message: "'limit' must be an integer between 1 and 500.", param: "limit", code: "invalid_value")
            }
            limit = value
        }
        let queue = request.uri.queryParameters["queue"].map(String.init)
        return ListObject(try await service.tasks.deadLetters(limit: limit, queue: queue).map { DeadLetterObject($0) })
    }

    @Sendable func show(_ request: Request, context: ChorusRequestContext) async throws -> DeadLetterObject {
        let letter = try await service.deadLetter(id: try context.parameters.require("id"))
        let task = try await letter.taskID.asyncFlatMap { try await service.tasks.task(id: $0, ownerID: nil) }
        return DeadLetterObject(letter, task: Nullable(wrappedValue: task.map(TaskService<Store>.render)))
    }

    @Sendable func replay(_ request: Request, context: ChorusRequestContext) async throws -> DeadLetterReplayed {
        let (letter, task) = try await service.replayDeadLetter(id: try context.parameters.require("id"))
        return DeadLetterReplayed(id: letter.id, task: TaskService<Store>.render(task))
    }

    @Sendable func delete(_ request: Request, context: ChorusRequestContext) async throws -> DeadLettersDeleted {
        let letter = try await service.deleteDeadLetter(id: try context.parameters.require("id"))
        return DeadLettersDeleted(id: letter.id, deleted: 1)
    }

    /// Everything needs saying: `?all=true`, or `?queue=NAME` for one queue's.
    @Sendable func purge(_ request: Request, context: ChorusRequestContext) async throws -> DeadLettersDeleted {
        let queue = request.uri.queryParameters["queue"].map(String.init)
        guard queue != nil || request.uri.queryParameters["all"] == "true" else {
            throw ChorusError.invalidRequest(
                message: "Purging dead letters needs '?all=true' (every queue's) or '?queue=NAME'.", param: "all", code: "missing_required_parameter")
        }
        return DeadLettersDeleted(id: nil, deleted: try await service.purgeDeadLetters(queue: queue))
    }
}

extension Optional {
    fileprivate func asyncFlatMap<U>(_ transform: (Wrapped) async throws -> U?) async rethrows -> U? {
        guard let self else { return nil }
        return try await transform(self)
    }
}
