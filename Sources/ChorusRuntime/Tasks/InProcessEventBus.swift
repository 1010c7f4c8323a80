public import ChorusCore

/// The embedded event bus: each task's events in memory, replayed to late followers and pushed to
/// live ones; an ended task's events are dropped after their expiry.
public actor InProcessEventBus: TaskEventBus {
    private var events: [String: [TaskEvent]] = [:]
    private var followers: [String: [String: TaskFollowStream.Continuation]] = [:]
    /// The latest expiry of each task: an older timer that fires after a replay drops nothing.
    private var expiries: [String: Int] = [:]
    private var nextExpiry = 0

    public init() {}

    public func publish(_ event: TaskEvent) throws {
        let last = events[event.taskID]?.last?.seq ?? 0
        guard event.seq == last + 1 else {
            throw ChorusError.internalError("event \(event.seq) of task \(event.taskID) follows \(last): the task was taken over")
        }
        events[event.taskID, default: []].append(event)
        for continuation in (followers[event.taskID] ?? [:]).values {
            continuation.yield(.events([event]))
            if event.isTerminal { continuation.finish() }
        }
        if event.isTerminal { followers[event.taskID] = nil }
    }

    public func lastSequence(taskID: String) -> Int {
        events[taskID]?.last?.seq ?? 0
    }

    public nonisolated func follow(taskID: String, after seq: Int, into continuation: TaskFollowStream.Continuation) -> @Sendable () -> Void {
        let followerID = Identifier.make("follower_")
        Task { await self.register(taskID: taskID, followerID: followerID, after: seq, continuation: continuation) }
        return { Task { await self.unregister(taskID: taskID, followerID: followerID) } }
    }

    private func register(taskID: String, followerID: String, after seq: Int, continuation: TaskFollowStream.Continuation) {
        let stored = events[taskID] ?? []
        let replay = stored.filter { $0.seq > seq }
        if !replay.isEmpty { continuation.yield(.events(replay)) }
        // Ended: its terminal event was just replayed, or seen already (a client resuming after it).
        if stored.last?.isTerminal == true {
            continuation.finish()
            return
        }
        followers[taskID, default: [:]][followerID] = continuation
    }

    private func unregister(taskID: String, followerID: String) {
        followers[taskID]?[followerID] = nil
        if followers[taskID]?.isEmpty == true { followers[taskID] = nil }
    }

    public func expire(taskID: String, afterSeconds seconds: Int) {
        nextExpiry += 1
        let expiry = nextExpiry
        expiries[taskID] = expiry
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            self.drop(taskID, expiry: expiry)
        }
    }

    public func forget(taskID: String) {
        events[taskID] = nil
        expiries[taskID] = nil
    }

    private func drop(_ taskID: String, expiry: Int) {
        guard expiries[taskID] == expiry else { return }
        forget(taskID: taskID)
    }
}
