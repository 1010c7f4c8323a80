public import ChorusCore

/// The embedded queue: same semantics as Redis Streams (per-model queues, pending entries,
/// redelivery counts, dead letters), with the database as its memory — the reconciler re-queues
/// pending tasks after a restart.
public actor InProcessQueue: TaskQueue {
    private struct Entry {
        var id: Int
        var model: String
        var taskID: String
        var carried: TaskRecord?
        var traceparent: String?
        var queuedAt = ContinuousClock.now
        var deliveries = 0
        var consumer: String?
        var deliveredAt: ContinuousClock.Instant?
    }

    private var nextID = 1
    private var waiting: [String: [Entry]] = [:]
    private var pendingEntries: [Int: Entry] = [:]
    private var deadLetters: [QueueDelivery] = []
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func enqueue(taskID: String, model: String, carrying task: TaskRecord?) {
        waiting[model, default: []].append(Entry(id: nextID, model: model, taskID: taskID, carried: task, traceparent: TraceParent.current))
        nextID += 1
        let toWake = waiters
        waiters = []
        for waiter in toWake { waiter.resume() }
    }

    public func receive(models: [String], consumer: String, count: Int) async throws -> [QueueDelivery] {
        let deadline = ContinuousClock.now + .seconds(1)
        while true {
            var deliveries: [QueueDelivery] = []
            for model in models {
                while deliveries.count < count, var entry = waiting[model]?.first {
                    waiting[model]?.removeFirst()
                    entry.deliveries += 1
                    entry.consumer = consumer
                    entry.deliveredAt = .now
                    pendingEntries[entry.id] = entry
                    deliveries.append(delivery(entry))
                }
            }
            if !deliveries.isEmpty || ContinuousClock.now >= deadline { return deliveries }
            try Task.checkCancellation()
            await waitForWork(until: deadline)
        }
    }

    private func waitForWork(until deadline: ContinuousClock.Instant) async {
        await withCheckedContinuation { continuation in
            waiters.append(continuation)
            Task { [weak self] in
                try? await Task.sleep(until: deadline)
                await self?.wakeAll()
            }
        }
    }

    private func wakeAll() {
        let toWake = waiters
        waiters = []
        for waiter in toWake { waiter.resume() }
    }

    public func reclaim(models: [String], consumer: String, minIdleMilliseconds: Int64, count: Int) -> [QueueDelivery] {
        let now = ContinuousClock.now
        var reclaimed: [QueueDelivery] = []
        for (id, var entry) in pendingEntries.sorted(by: { $0.key < $1.key })
        where models.contains(entry.model) && reclaimed.count < count {
            guard let deliveredAt = entry.deliveredAt, now - deliveredAt >= .milliseconds(minIdleMilliseconds) else { continue }
            entry.deliveries += 1
            entry.consumer = consumer
            entry.deliveredAt = now
            pendingEntries[id] = entry
            reclaimed.append(delivery(entry))
        }
        return reclaimed
    }

    public func acknowledge(_ delivery: QueueDelivery) {
        if let id = Int(delivery.entryID) { pendingEntries[id] = nil }
    }

    public func deadLetter(_ delivery: QueueDelivery, reason: String) {
        deadLetters.append(delivery)
        acknowledge(delivery)
    }

    public func forgetDeadLetters(model: String, entryIDs: [String]?) {
        deadLetters.removeAll { $0.model == model && (entryIDs?.contains($0.entryID) ?? true) }
    }

    public func stats(models: [String]) -> [QueueStats] {
        models.map { model in
            let lag = waiting[model]?.count ?? 0
            let pending = pendingEntries.values.filter { $0.model == model }.count
            return QueueStats(model: model, depth: lag + pending, pending: pending, lag: lag)
        }
    }

    public func ping() {}

    private func delivery(_ entry: Entry) -> QueueDelivery {
        QueueDelivery(
            model: entry.model, entryID: String(entry.id), taskID: entry.taskID, deliveries: entry.deliveries,
            payload: "task_id=\(entry.taskID)",
            carried: entry.deliveries == 1 && ContinuousClock.now - entry.queuedAt <= QueueDelivery.carriedFreshness ? entry.carried : nil,
            traceparent: entry.traceparent)
    }
}
