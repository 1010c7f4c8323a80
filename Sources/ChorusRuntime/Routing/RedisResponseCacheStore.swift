public import ChorusRedis
public import ChorusStore

/// The distributed shape's response cache: one Redis key per answer, expiring with its TTL, so
/// every gateway and worker shares it and nothing needs sweeping.
public struct RedisResponseCacheStore: ResponseCacheStore {
    let redis: RedisClient
    let prefix: String

    public init(redis: RedisClient, prefix: String) {
        self.redis = redis
        self.prefix = prefix
    }

    public func cached(key: String) async throws -> String? {
        try await redis.get("\(prefix):cache:\(key)")
    }

    public func cache(key: String, model: String, value: String, ttlSeconds: Double) async throws {
        try await redis.set("\(prefix):cache:\(key)", to: value, expiresIn: .milliseconds(Int64(ttlSeconds * 1000)))
    }
}
