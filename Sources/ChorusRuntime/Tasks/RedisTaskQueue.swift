public import ChorusCore
public import ChorusRedis
public import Logging

/// The distributed queue: one Redis stream per model (`chorus:queue:<model>`), one consumer group
/// (`workers`) per stream. An entry names a task (`task_id`); it is acknowledged and deleted when
/// the task is done, so a stream's length is its depth. Dead entries go to `chorus:dead:<model>`
/// (and the `sys_dead_letters` table, written by the worker).
public struct RedisTaskQueue: TaskQueue {
    public static let group = "workers"
    let redis: RedisClient
    let prefix: String
    let logger: Logger
    /// How long one receive waits for new entries.
    let blockFor: Duration

    public init(redis: RedisClient, prefix: String = "chorus", blockFor: Duration = .seconds(1), logger: Logger) {
        self.redis = redis
        self.prefix = prefix
        self.blockFor = blockFor
        self.logger = logger
    }

    func key(_ model: String) -> String { "\(prefix):queue:\(model)" }
    func deadKey(_ model: String) -> String { "\(prefix):dead:\(model)" }

    public func enqueue(taskID: String, model: String, carrying task: TaskRecord?) async throws {
        var fields = [("task_id", taskID)]
        if let task, let carried = try? task.carried.encoded(), carried.count <= Self.maximumCarriedBytes {
            fields.append(("task", String(decoding: carried, as: UTF8.self)))
        }
        if let traceparent = TraceParent.current { fields.append(("traceparent", traceparent)) }
        try await redis.xadd(key(model), fields: fields)
    }

    /// A larger task is not carried: its worker claims it first and reads it from the database.
    static var maximumCarriedBytes: Int { 32 * 1024 }

    public func receive(models: [String], consumer: String, count: Int) async throws -> [QueueDelivery] {
        let keys = models.map(key)
        let results = try await withGroups(models) {
            try await redis.xreadgroup(group: Self.group, consumer: consumer, keys: keys, count: count, block: blockFor)
        }
        // The entry id's first part is Redis's clock at the XADD, in milliseconds. A worker whose
        // clock runs ahead of Redis's by more than the freshness only loses the early start.
        let freshSince = nowMilliseconds() - Int64(QueueDelivery.carriedFreshness.components.seconds * 1000)
        return results.flatMap { result in
            let model = models[keys.firstIndex(of: result.key) ?? 0]
            return result.entries.map { entry in
                var delivery = delivery(model: model, entry: entry, deliveries: 1)
                // Only a first delivery: a redelivered task may have run, so its worker claims it first.
                if let queuedAt = entry.id.split(separator: "-").first.flatMap({ Int64($0) }), queuedAt >= freshSince {
                    delivery.carried = entry["task"].flatMap { try? JSONValue.parse(Array($0.utf8)) }.flatMap(TaskRecord.init(carried:))
                }
                return delivery
            }
        }
    }

    public func reclaim(models: [String], consumer: String, minIdleMilliseconds: Int64, count: Int) async throws -> [QueueDelivery] {
        var deliveries: [QueueDelivery] = []
        for model in models {
            let claimed = try await withGroups([model]) {
                try await redis.xautoclaim(key(model), group: Self.group, consumer: consumer, minIdle: .milliseconds(minIdleMilliseconds), count: count)
            }
            for entry in claimed.entries {
                let pending = try? await redis.xpending(key(model), group: Self.group, start: entry.id, end: entry.id, count: 1)
                deliveries.append(delivery(model: model, entry: entry, deliveries: pending?.first?.deliveryCount ?? 2))
            }
        }
        return deliveries
    }

    public func acknowledge(_ delivery: QueueDelivery) async throws {
        try await redis.pipeline([
            ["XACK", key(delivery.model), Self.group, delivery.entryID],
            ["XDEL", key(delivery.model), delivery.entryID],
        ])
    }

    public func deadLetter(_ delivery: QueueDelivery, reason: String) async throws {
        try await redis.xadd(deadKey(delivery.model), fields: [
            ("entry_id", delivery.entryID), ("task_id", delivery.taskID ?? ""), ("payload", delivery.payload),
            ("reason", reason), ("deliveries", String(delivery.deliveries)),
        ])
        try await acknowledge(delivery)
    }

    public func forgetDeadLetters(model: String, entryIDs: [String]?) async throws {
        guard let entryIDs else {
            _ = try await redis.del(deadKey(model))
            return
        }
        // The dead stream is small and rarely read: a scan finds the entries that name these ids.
        let wanted = Set(entryIDs)
        let found = try await redis.xrange(deadKey(model)).filter { $0["entry_id"].map(wanted.contains) ?? false }.map(\.id)
        if !found.isEmpty { _ = try await redis.xdel(deadKey(model), ids: found) }
    }

    public func stats(models: [String]) async throws -> [QueueStats] {
        var stats: [QueueStats] = []
        for model in models {
            let depth = try await redis.xlen(key(model))
            let group = try? await redis.xinfoGroups(key(model)).first { $0.name == Self.group }
            stats.append(QueueStats(model: model, depth: depth, pending: group?.pending ?? 0, lag: group?.lag ?? max(0, depth - (group?.pending ?? 0))))
        }
        return stats
    }

    public func ping() async throws {
        _ = try await redis.ping()
    }

    /// Creates the streams' consumer groups (at start, and again when Redis lost them — a restart
    /// without persistence, a failover) and runs `body`.
    func withGroups<T>(_ models: [String], _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as RedisError where error.serverErrorCode == "NOGROUP" {
            for model in models {
                _ = try await redis.xgroupCreate(key(model), group: Self.group, startID: "0", makeStream: true)
            }
            logger.info("created the queue consumer groups", metadata: ["queues": "\(models.joined(separator: ","))"])
            return try await body()
        }
    }

    private func delivery(model: String, entry: StreamEntry, deliveries: Int) -> QueueDelivery {
        let taskID = entry["task_id"].flatMap { $0.isEmpty ? nil : $0 }
        return QueueDelivery(
            model: model, entryID: entry.id, taskID: taskID, deliveries: deliveries, payload: entry.description, traceparent: entry["traceparent"])
    }
}
