public import ChorusCore
public import ChorusRedis
public import Logging
import Synchronization

/// Task events in Redis: one stream per task (`chorus:events:<task>`) whose entry ids are
/// `0-<seq>`, so any gateway can replay from any point and resume after `Last-Event-ID`, and an
/// event from a worker that lost its task (a lower or equal id) is refused by Redis itself. The
/// stream expires a while after the task ends.
///
/// Followers on one process share one blocking `XREAD` over all followed streams, so a gateway
/// holds a bounded number of Redis connections however many clients it serves.
public final class RedisEventBus: TaskEventBus {
    let redis: RedisClient
    let prefix: String
    let logger: Logger
    private let hub: FollowerHub

    public init(redis: RedisClient, prefix: String = "chorus", logger: Logger) {
        self.redis = redis
        self.prefix = prefix
        self.logger = logger
        self.hub = FollowerHub(redis: redis, prefix: prefix, logger: logger)
    }

    func key(_ taskID: String) -> String { "\(prefix):events:\(taskID)" }

    public func publish(_ event: TaskEvent) async throws {
        let json = String(decoding: try event.json.encoded(), as: UTF8.self)
        do {
            try await redis.xadd(key(event.taskID), id: "0-\(event.seq)", fields: [("e", json)])
        } catch let error as RedisError where error.serverErrorCode == "ERR" {
            throw ChorusError.internalError("event \(event.seq) of task \(event.taskID) was refused (the task was taken over): \(error)")
        }
    }

    public func lastSequence(taskID: String) async throws -> Int {
        guard let id = try await lastEntry(taskID: taskID)?.first?.string else { return 0 }
        return Self.sequence(of: id) ?? 0
    }

    /// The task's last event, nil when it has none (or it cannot be read).
    func lastEvent(taskID: String) async throws -> TaskEvent? {
        guard let fields = try await lastEntry(taskID: taskID)?.last?.array, fields.count >= 2, fields[0].string == "e",
              let text = fields[1].string, let json = try? JSONValue.parse(Array(text.utf8))
        else { return nil }
        return try? TaskEvent(json: json)
    }

    /// The last entry of the task's stream, `[id, [field, value, …]]` (arrays in RESP2 and RESP3
    /// alike); nil when the stream is empty or gone.
    private func lastEntry(taskID: String) async throws -> [RESPValue]? {
        try await redis.send(["XREVRANGE", key(taskID), "+", "-", "COUNT", "1"]).array?.first?.array
    }

    public func follow(taskID: String, after seq: Int, into continuation: TaskFollowStream.Continuation) -> @Sendable () -> Void {
        let hub = self.hub
        let followerID = Identifier.make("f_")
        let task = Task {
            do {
                // Replay what exists, then hand over to the shared reader from the last one seen.
                var last = seq
                while true {
                    let entries = try await redis.xrange(key(taskID), start: "0-\(last + 1)", end: "+", count: 500)
                    var batch: [TaskEvent] = []
                    batch.reserveCapacity(entries.count)
                    for entry in entries {
                        guard let event = Self.event(entry) else { continue }
                        last = event.seq
                        batch.append(event)
                        if event.isTerminal { break }
                    }
                    if !batch.isEmpty { continuation.yield(.events(batch)) }
                    if batch.last?.isTerminal == true {
                        continuation.finish()
                        return
                    }
                    if entries.count < 500 { break }
                }
                // Resuming after the terminal event (an EventSource reconnects when the stream
                // ends) finds nothing newer: end at once instead of waiting for ever.
                if last == seq, seq > 0, try await lastEvent(taskID: taskID)?.isTerminal == true {
                    continuation.finish()
                    return
                }
                await hub.add(followerID: followerID, taskID: taskID, after: last, continuation: continuation)
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return {
            task.cancel()
            Task { await hub.remove(followerID: followerID, taskID: taskID) }
        }
    }

    public func expire(taskID: String, afterSeconds seconds: Int) async throws {
        _ = try await redis.expire(key(taskID), seconds: seconds)
    }

    public func forget(taskID: String) async throws {
        _ = try await redis.del(key(taskID))
    }

    static func sequence(of id: String) -> Int? {
        guard id.hasPrefix("0-") else { return nil }
        return Int(id.dropFirst(2))
    }

    static func event(_ entry: StreamEntry) -> TaskEvent? {
        guard let text = entry["e"], let json = try? JSONValue.parse(Array(text.utf8)) else { return nil }
        return try? TaskEvent(json: json)
    }
}

/// The one reader loop of a process: `XREAD BLOCK` over every followed task's stream, plus this
/// hub's wake stream: a follower that joins while the read is blocked adds an entry there, so the
/// read returns at once and the next round includes the new task (no waiting out the block).
actor FollowerHub {
    /// Each follower has its own position; the shared read starts from the lowest.
    private struct Follower {
        var last: Int
        let continuation: TaskFollowStream.Continuation
    }

    private let redis: RedisClient
    private let prefix: String
    private let logger: Logger
    private var followed: [String: [String: Follower]] = [:]
    private var reader: Task<Void, Never>?
    private let wakeKey: String
    /// The last wake entry seen; a wake sent before the read started still ends it at once.
    private var lastWake = "0-0"
    private var blocked = false
    private var wakeSent = false

    init(redis: RedisClient, prefix: String, logger: Logger) {
        self.redis = redis
        self.prefix = prefix
        self.logger = logger
        self.wakeKey = "\(prefix):wake:\(Identifier.make(""))"
    }

    func add(followerID: String, taskID: String, after: Int, continuation: TaskFollowStream.Continuation) {
        let isNew = followed[taskID] == nil
        followed[taskID, default: [:]][followerID] = Follower(last: after, continuation: continuation)
        if reader == nil {
            reader = Task { await self.readLoop() }
        } else if isNew, blocked, !wakeSent {
            wakeSent = true
            let redis = self.redis, key = self.wakeKey
            Task {
                _ = try? await redis.xadd(key, fields: [(name: "w", value: "1")], maxLength: 1)
                _ = try? await redis.expire(key, seconds: 60)
            }
        }
    }

    func remove(followerID: String, taskID: String) {
        followed[taskID]?[followerID] = nil
        if followed[taskID]?.isEmpty == true { followed[taskID] = nil }
    }

    private func readLoop() async {
        var backoff = 0.1
        while !followed.isEmpty, !Task.isCancelled {
            let tasks = Array(followed.keys)
            let streams = tasks.map { (key: "\(prefix):events:\($0)", after: "0-\(followed[$0]?.values.map(\.last).min() ?? 0)") }
                + [(key: wakeKey, after: lastWake)]
            do {
                // Followers added meanwhile wake the read (see `add`), or join the next round.
                blocked = true
                wakeSent = false
                let results = try await redis.xread(streams: streams, count: 500, block: .milliseconds(250))
                blocked = false
                backoff = 0.1
                for result in results {
                    if result.key == wakeKey {
                        lastWake = result.entries.last?.id ?? lastWake
                        continue
                    }
                    let taskID = String(result.key.dropFirst("\(prefix):events:".count))
                    var batch: [TaskEvent] = []
                    batch.reserveCapacity(result.entries.count)
                    for entry in result.entries {
                        guard let event = RedisEventBus.event(entry) else {
                            // Skip what cannot be read, or the next read returns it again at once.
                            logger.warning("skipping an unreadable task event", metadata: ["task_id": "\(taskID)", "entry": "\(entry.id)"])
                            deliver(batch, taskID: taskID)
                            batch.removeAll()
                            advance(taskID: taskID, to: RedisEventBus.sequence(of: entry.id) ?? 0)
                            continue
                        }
                        batch.append(event)
                    }
                    deliver(batch, taskID: taskID)
                }
            } catch {
                blocked = false
                logger.warning("following task events failed; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(Int64(backoff * 1000)))
                backoff = min(backoff * 2, 5)
            }
        }
        reader = nil
        if !followed.isEmpty { reader = Task { await self.readLoop() } }
    }

    private func advance(taskID: String, to seq: Int) {
        guard var followers = followed[taskID] else { return }
        for (id, follower) in followers { followers[id]?.last = max(follower.last, seq) }
        followed[taskID] = followers
    }

    /// Gives each follower of the task the events of `batch` it has not seen, in one yield, and
    /// ends it at a terminal event.
    private func deliver(_ batch: [TaskEvent], taskID: String) {
        guard !batch.isEmpty, var followers = followed[taskID] else { return }
        let end = batch.firstIndex(where: \.isTerminal).map { $0 + 1 } ?? batch.count
        for (id, follower) in followers {
            let unseen = batch[..<end].filter { $0.seq > follower.last }
            guard let last = unseen.last else { continue }
            follower.continuation.yield(.events(unseen))
            if last.isTerminal {
                follower.continuation.finish()
                followers[id] = nil
            } else {
                followers[id]?.last = last.seq
            }
        }
        followed[taskID] = followers.isEmpty ? nil : followers
    }
}
