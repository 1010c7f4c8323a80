import ChorusCore
import ChorusRuntime
import ChorusStore

/// The events of one task for a follower (SSE or WebSocket): from the bus, or — once the bus has
/// forgotten an ended task — one final event made from the stored result.
struct TaskEventFeed<Store: ConversationStore>: Sendable {
    let service: TaskService<Store>

    func follow(_ task: TaskRecord, after: Int, keepAlive: Duration? = nil) async throws -> TaskFollower {
        if task.state.isTerminal, try await service.bus.lastSequence(taskID: task.id) == 0 {
            let final = TaskEvent(seq: 1, taskID: task.id, kind: task.state == .success ? .finish : .error, data: task.state == .success ? task.result : task.error)
            return .finished(with: after < 1 ? [final] : [])
        }
        return service.bus.follow(taskID: task.id, after: after, keepAlive: keepAlive)
    }
}
