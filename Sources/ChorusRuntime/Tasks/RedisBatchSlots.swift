public import ChorusRedis
import ChorusCore

/// The distributed shape's slots: one sorted set per batch (member: task id, score: lease end),
/// taken atomically by a script, so workers on any machine share the limit.
public struct RedisBatchSlots: BatchSlots {
    let redis: RedisClient
    let prefix: String

    public init(redis: RedisClient, prefix: String) {
        self.redis = redis
        self.prefix = prefix
    }

    /// KEYS[1] the batch's set; ARGV: task, limit, now, lease end, key expiry (s). 1 when taken.
    static let acquire = RedisScript("""
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
        if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
          redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
          redis.call('EXPIRE', KEYS[1], ARGV[5])
          return 1
        end
        return 0
        """)

    private func key(_ batch: String) -> String { "\(prefix):batchslots:\(batch)" }

    public func tryAcquire(batch: String, task: String, limit: Int, leaseSeconds: Double) async throws -> Bool {
        let now = nowMilliseconds()
        let reply = try await redis.evaluate(Self.acquire, keys: [key(batch)], arguments: [
            task, String(limit), String(now), String(now + Int64(leaseSeconds * 1000)), String(Int(leaseSeconds * 4) + 60),
        ])
        return reply.int == 1
    }

    public func renew(batch: String, task: String, leaseSeconds: Double) async throws {
        _ = try await redis.send(["ZADD", key(batch), "XX", String(nowMilliseconds() + Int64(leaseSeconds * 1000)), task])
    }

    public func release(batch: String, task: String) async throws {
        _ = try await redis.send(["ZREM", key(batch), task])
    }
}
