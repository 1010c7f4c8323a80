import ChorusCore
import ChorusStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// How a worker runs tasks.
public struct WorkerSettings: Sendable {
    /// Stable across restarts, so a restarted worker reclaims its own unfinished entries.
    public var id: String
    /// The queues it serves (model names, and `_tasks` for generic tasks).
    public var queues: [String]
    /// Tasks run at once.
    public var concurrency = 16
    /// A running task's lease; renewed every third of it. A task whose lease passed is reclaimable.
    public var leaseMilliseconds: Int64 = 15_000
    /// A task claimed this many times without finishing (its workers kept dying) is dead-lettered.
    public var maxAttempts = 3
    /// How long an event stream is kept after its task ended.
    public var eventRetentionSeconds = 3600
    /// A pending task queued longer than this, with nothing left in its queue, is queued again.
    public var requeueAfterMilliseconds: Int64 = 10_000

    public init(id: String, queues: [String]) {
        self.id = id
        self.queues = queues
    }
}
