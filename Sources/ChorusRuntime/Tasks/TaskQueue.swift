public import ChorusCore
import NIOCore
import NIOPosix

/// One delivery of a queue entry to a worker. The entry names the task; its state is in the database.
public struct QueueDelivery: Sendable, Equatable {
    /// The model whose queue it came from.
    public var model: String
    /// The entry's id in its queue (a Redis stream id, or a counter in process).
    public var entryID: String
    /// nil for a malformed entry.
    public var taskID: String?
    /// How many times the entry was delivered, this time included.
    public var deliveries: Int
    /// The entry as it was, for dead letters.
    public var payload: String
    /// The task as submitted (`TaskRecord.carried`), on a first delivery of an entry that carries it
    /// and was queued at most `carriedFreshness` ago. An entry that waited longer (a backlog) may
    /// name a task cancelled meanwhile, whose upstream call would be started for nothing.
    public var carried: TaskRecord?
    /// The W3C `traceparent` of the span that queued the entry (nil when it was not traced): the
    /// worker's run of the task continues that trace.
    public var traceparent: String?

    /// How old an entry may be for its worker to begin from the carried copy.
    public static var carriedFreshness: Duration { .seconds(2) }

    public init(
        model: String, entryID: String, taskID: String?, deliveries: Int, payload: String, carried: TaskRecord? = nil, traceparent: String? = nil
    ) {
        self.model = model
        self.entryID = entryID
        self.taskID = taskID
        self.deliveries = deliveries
        self.payload = payload
        self.carried = carried
        self.traceparent = traceparent
    }
}

/// Per-model queue figures: what an autoscaler reads.
public struct QueueStats: Sendable, Equatable {
    public var model: String
    /// Entries in the queue (delivered or not).
    public var depth: Int
    /// Delivered to a worker and not yet acknowledged.
    public var pending: Int
    /// Entries not yet delivered to any worker.
    public var lag: Int

    public init(model: String, depth: Int, pending: Int, lag: Int) {
        self.model = model
        self.depth = depth
        self.pending = pending
        self.lag = lag
    }
}

/// One queue per model, one consumer group of workers per queue (Redis Streams, or in process).
/// Delivery is at least once: a worker acknowledges an entry when its task is done.
public protocol TaskQueue: Sendable {
    /// Names a task on its model's queue. With `task`, the entry also carries the task as submitted
    /// (when it is small enough), so that the first worker to get it can begin before its claim,
    /// and the current span's `traceparent` when tracing.
    func enqueue(taskID: String, model: String, carrying task: TaskRecord?) async throws
    /// New entries for these models, waiting up to about a second when there are none.
    func receive(models: [String], consumer: String, count: Int) async throws -> [QueueDelivery]
    /// Entries delivered to some consumer and not acknowledged for `minIdleMilliseconds`: taken
    /// over by `consumer` (whether their task is really abandoned is for the task's lease to say).
    func reclaim(models: [String], consumer: String, minIdleMilliseconds: Int64, count: Int) async throws -> [QueueDelivery]
    func acknowledge(_ delivery: QueueDelivery) async throws
    /// Moves the entry to the dead-letter queue and acknowledges it.
    func deadLetter(_ delivery: QueueDelivery, reason: String) async throws
    /// Removes the queue's own copies of dead letters (by their original entry ids; all of the
    /// model's with nil) once they were replayed or purged from the dead-letter table.
    func forgetDeadLetters(model: String, entryIDs: [String]?) async throws
    func stats(models: [String]) async throws -> [QueueStats]
    /// Checks the queue is reachable (for `/readyz`).
    func ping() async throws
}

extension TaskQueue {
    /// An entry that names the task and carries nothing (the reconciler's, a test's).
    public func enqueue(taskID: String, model: String) async throws {
        try await enqueue(taskID: taskID, model: model, carrying: nil)
    }
}

public typealias TaskFollowStream = AsyncThrowingStream<TaskFollowItem, any Error>

extension TaskEventBus {
    /// A task's events after `seq` until its terminal event, and a `.keepAlive` every
    /// `keepAlive` while following (an event-loop timer, not a task: a follower keeps no task
    /// and no async frames of its own).
    public func follow(taskID: String, after seq: Int, keepAlive: Duration? = nil) -> TaskFollower {
        let (items, continuation) = TaskFollowStream.makeStream()
        let stop = follow(taskID: taskID, after: seq, into: continuation)
        let ticker = keepAlive.map { interval in
            MultiThreadedEventLoopGroup.singleton.any().scheduleRepeatedTask(initialDelay: TimeAmount(interval), delay: TimeAmount(interval)) { _ in
                continuation.yield(.keepAlive)
            }
        }
        continuation.onTermination = { _ in
            ticker?.cancel()
            stop()
        }
        return TaskFollower(items: items, continuation: continuation)
    }
}
