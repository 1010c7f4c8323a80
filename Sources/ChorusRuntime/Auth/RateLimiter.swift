public import ChorusCore
public import ChorusRedis
import Synchronization

/// One counter of a rate limit check: `perMinute` units refill continuously over a minute
/// (a generic cell rate: a bucket of one minute's allowance).
public struct RateLimitItem: Sendable, Equatable {
    /// `requests` or `tokens`.
    public var kind: String
    /// Who is counted, for the error message: `API key`, `user`, `IP`.
    public var scope: String
    public var key: String
    public var perMinute: Int
    /// Units this request needs to be admitted.
    public var cost: Int64
    /// Whether those units are taken now (requests) or only checked (tokens, charged after).
    public var charge: Bool

    public init(kind: String, scope: String, key: String, perMinute: Int, cost: Int64, charge: Bool) {
        self.kind = kind
        self.scope = scope
        self.key = key
        self.perMinute = perMinute
        self.cost = cost
        self.charge = charge
    }
}

public enum RateDecision: Sendable, Equatable {
    case allowed
    case denied(RateLimitItem, retryAfterMilliseconds: Int64)
}

/// Counts requests and tokens per key, user and IP. `acquire` is atomic over its items: either
/// every check passes and every charge is taken, or nothing changes.
public protocol RateLimiter: Sendable {
    func acquire(_ items: [RateLimitItem]) async throws -> RateDecision
    /// Takes `cost` from every item without checking (real token usage, after a call).
    func charge(_ items: [RateLimitItem]) async throws
}

/// The cell-rate arithmetic, shared by both limiters: `tat` is the theoretical arrival time
/// (milliseconds) at which the bucket is full again.
enum CellRate {
    static let window: Double = 60_000

    /// The new tat if the item is admitted, or how long to wait.
    static func evaluate(tat: Double?, now: Double, item: RateLimitItem) -> (newTAT: Double, retryAfter: Double?) {
        let interval = window / Double(item.perMinute)
        let start = max(tat ?? now, now)
        let newTAT = start + Double(item.cost) * interval
        let over = newTAT - now - window
        return (newTAT, over > 0 ? over : nil)
    }
}

/// Embedded mode: counters in this process's memory.
public final class InMemoryRateLimiter: RateLimiter {
    private let cells = Mutex<[String: Double]>([:])
    private let clock: @Sendable () -> Double

    public init(clock: @escaping @Sendable () -> Double = { Double(nowMilliseconds()) }) {
        self.clock = clock
    }

    public func acquire(_ items: [RateLimitItem]) async throws -> RateDecision {
        let now = clock()
        return cells.withLock { cells in
            var updates: [(String, Double)] = []
            for item in items where item.perMinute > 0 {
                let (newTAT, retryAfter) = CellRate.evaluate(tat: cells[item.key], now: now, item: item)
                if let retryAfter { return .denied(item, retryAfterMilliseconds: Int64(retryAfter.rounded(.up))) }
                if item.charge { updates.append((item.key, newTAT)) }
            }
            for (key, tat) in updates { cells[key] = tat }
            if cells.count > 100_000 { cells = cells.filter { $0.value > now } }
            return .allowed
        }
    }

    public func charge(_ items: [RateLimitItem]) async throws {
        let now = clock()
        cells.withLock { cells in
            for item in items where item.perMinute > 0 && item.cost > 0 {
                cells[item.key] = CellRate.evaluate(tat: cells[item.key], now: now, item: item).newTAT
            }
        }
    }
}

/// The distributed shape: counters in Redis, checked and charged by one Lua script with Redis's
/// clock, so every gateway enforces the same budget.
public struct RedisRateLimiter: RateLimiter {
    let redis: RedisClient
    let prefix: String

    public init(redis: RedisClient, prefix: String) {
        self.redis = redis
        self.prefix = prefix
    }

    /// ARGV[1] is `check` or `force`; then per key: per-minute, cost, charge (1/0).
    static let script = RedisScript("""
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local force = ARGV[1] == 'force'
        local pending = {}
        for i = 1, #KEYS do
          local per = tonumber(ARGV[(i - 1) * 3 + 2])
          local cost = tonumber(ARGV[(i - 1) * 3 + 3])
          local charge = ARGV[(i - 1) * 3 + 4] == '1'
          local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
          if tat < now then tat = now end
          local new = tat + cost * (60000 / per)
          if not force and new - now > 60000 then
            return {0, i, math.ceil(new - now - 60000)}
          end
          if charge then pending[#pending + 1] = {KEYS[i], new} end
        end
        for _, p in ipairs(pending) do
          redis.call('SET', p[1], string.format('%.3f', p[2]), 'PX', math.ceil(p[2] - now) + 1000)
        end
        return {1, 0, 0}
        """)

    public func acquire(_ items: [RateLimitItem]) async throws -> RateDecision {
        let active = items.filter { $0.perMinute > 0 }
        guard !active.isEmpty else { return .allowed }
        let reply = try await run(active, mode: "check")
        guard case .array(let values) = reply, values.count == 3, let allowed = values[0].int else {
            throw RedisError.protocolError("rate limit script: unexpected reply \(reply)")
        }
        if allowed == 1 { return .allowed }
        let index = (values[1].int ?? 1) - 1
        return .denied(active[max(0, min(index, active.count - 1))], retryAfterMilliseconds: Int64(values[2].int ?? 1000))
    }

    public func charge(_ items: [RateLimitItem]) async throws {
        let active = items.filter { $0.perMinute > 0 && $0.cost > 0 }.map { item in
            var item = item
            item.charge = true
            return item
        }
        guard !active.isEmpty else { return }
        _ = try await run(active, mode: "force")
    }

    private func run(_ items: [RateLimitItem], mode: String) async throws -> RESPValue {
        var arguments = [mode]
        for item in items { arguments += [String(item.perMinute), String(item.cost), item.charge ? "1" : "0"] }
        return try await redis.evaluate(Self.script, keys: items.map { "\(prefix):rl:\($0.key)" }, arguments: arguments)
    }
}
