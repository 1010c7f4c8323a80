import ChorusCore
public import ChorusRedis
public import ChorusStore

/// The accounts version shared by every gateway and worker: a random value in Redis that each
/// change to accounts replaces. Random rather than a counter, so that a Redis that lost its data
/// can never bring back a version that entries were cached under.
public struct RedisAccountsVersion: AccountsVersion {
    let redis: RedisClient
    let key: String

    public init(redis: RedisClient, prefix: String) {
        self.redis = redis
        self.key = prefix + ":accounts:version"
    }

    public func current() async throws -> String {
        if let version = try await redis.get(key) { return version }
        // No version yet (a new or emptied Redis): make one; a process racing us may win.
        try await redis.set(key, to: Secrets.random(16), onlyIfAbsent: true)
        guard let version = try await redis.get(key) else { throw RedisError.protocolError("the accounts version vanished") }
        return version
    }

    public func advance() async throws {
        try await redis.set(key, to: Secrets.random(16))
    }
}
