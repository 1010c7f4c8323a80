public import ChorusCore
import NIOCore
import NIOPosix

/// What a follower of a task reads: batches of its events in order and, when asked for, a
/// keep-alive tick while it is quiet.
public enum TaskFollowItem: Sendable {
    case events([TaskEvent])
    case keepAlive
}

/// The events of each task, kept so that any gateway can replay and follow them.
public protocol TaskEventBus: Sendable {
    /// Appends an event. Throws if an event with that `seq` or a later one exists (another worker
    /// has taken the task over).
    func publish(_ event: TaskEvent) async throws
    /// The last `seq` of a task, 0 when it has none.
    func lastSequence(taskID: String) async throws -> Int
    /// Yields the events after `seq` to `continuation`, then new ones as they come, and finishes
    /// it after a terminal event (or with the error that stopped following). Events come in
    /// batches, each what one read found, so a writer can send a batch in one write. Returns what
    /// stops following early (call it when the continuation terminates); the continuation stays
    /// the caller's, which may yield `.keepAlive` into it too.
    func follow(taskID: String, after seq: Int, into continuation: TaskFollowStream.Continuation) -> @Sendable () -> Void
    /// Keeps the events of an ended task for `seconds` more.
    func expire(taskID: String, afterSeconds seconds: Int) async throws
    /// Drops a task's events at once, and any expiry set before: a replayed task starts a fresh
    /// sequence.
    func forget(taskID: String) async throws
}

/// One follower's view of a task: its events and keep-alive ticks, until the terminal event or `end()`.
public struct TaskFollower: Sendable {
    public let items: TaskFollowStream
    private let continuation: TaskFollowStream.Continuation

    init(items: TaskFollowStream, continuation: TaskFollowStream.Continuation) {
        self.items = items
        self.continuation = continuation
    }

    /// A follower that gets `events` and ends (a task whose events the bus has forgotten).
    public static func finished(with events: [TaskEvent]) -> TaskFollower {
        let (items, continuation) = TaskFollowStream.makeStream()
        if !events.isEmpty { continuation.yield(.events(events)) }
        continuation.finish()
        return TaskFollower(items: items, continuation: continuation)
    }

    /// Ends `items` after what was already yielded (on shutdown); following stops.
    public func end() { continuation.finish() }
}
