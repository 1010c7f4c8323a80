public import ChorusCore
import ChorusStore

/// What a running task can tell the world.
public struct TaskRunContext: Sendable {
    public let task: TaskRecord
    let emitEvent: @Sendable (TaskEvent.Kind, String, JSONValue?) async throws -> Void
    let reportProgress: @Sendable (Int, Int?) async throws -> Void
    /// For a run begun before its claim was won: what its writes wait for. Nil for a run that
    /// began after its claim.
    public internal(set) var gate: RunGate?

    public init(task: TaskRecord, emit: @escaping @Sendable (TaskEvent.Kind, String, JSONValue?) async throws -> Void, progress: @escaping @Sendable (Int, Int?) async throws -> Void) {
        self.task = task
        self.emitEvent = emit
        self.reportProgress = progress
    }

    /// A thinking or answer token, or any other event, to every follower of the task.
    public func emit(_ kind: TaskEvent.Kind, token: String = "", data: JSONValue? = nil) async throws {
        try await emitEvent(kind, token, data)
    }

    /// Celery-style progress: stored on the task and sent as a `progress` event.
    public func progress(current: Int, total: Int?) async throws {
        try await reportProgress(current, total)
    }
}

/// A kind of task: a Swift handler with progress and a result. Cancellation arrives as task
/// cancellation; a handler saves what it must before returning.
public protocol TaskHandler: Sendable {
    var type: String { get }
    /// Whether a worker may begin a new task's run while its claim is on the way (from the copy its
    /// queue entry carries), and abandon it when the claim is lost. Only for a handler whose every
    /// effect goes through its context (events, progress) or waits for `TaskRunContext.gate`, as
    /// the chat engine's writes do: nothing it does before the claim is won may be seen. No by default.
    var startsBeforeClaim: Bool { get }
    /// Checks `params` at submission (throw `ChorusError.invalidRequest` for a 400).
    func validate(params: JSONValue) throws
    /// Checks `params` at submission and returns what is stored with the task (defaults filled
    /// in); by default `validate`, then `params` as they are.
    func prepare(params: JSONValue) throws -> JSONValue
    /// The queue its tasks go to; nil: the generic task queue.
    var queue: String? { get }
    func run(_ context: TaskRunContext) async throws -> JSONValue
}

extension TaskHandler {
    public var startsBeforeClaim: Bool { false }
    public var queue: String? { nil }

    public func prepare(params: JSONValue) throws -> JSONValue {
        try validate(params: params)
        return params
    }
}
