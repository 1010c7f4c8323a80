import ChorusCore
import Synchronization
import Testing

@testable import ChorusRuntime

@Suite("Rate limits and audit redaction")
struct RateLimiterTests {
    /// A clock the test moves by hand.
    final class ManualClock: Sendable {
        let now = Mutex<Double>(1_000_000)
        func advance(_ milliseconds: Double) { now.withLock { $0 += milliseconds } }
    }

    func item(_ key: String, perMinute: Int, cost: Int64 = 1, charge: Bool = true, kind: String = "requests") -> RateLimitItem {
        RateLimitItem(kind: kind, scope: "test", key: key, perMinute: perMinute, cost: cost, charge: charge)
    }

    @Test("a minute's allowance is admitted at once, the next request waits for the refill")
    func burstThenRefill() async throws {
        let clock = ManualClock()
        let limiter = InMemoryRateLimiter(clock: { clock.now.withLock { $0 } })
        for _ in 0..<10 {
            #expect(try await limiter.acquire([item("k", perMinute: 10)]) == .allowed)
        }
        guard case .denied(let denied, let wait) = try await limiter.acquire([item("k", perMinute: 10)]) else {
            Issue.record("the 11th request of a 10/minute limit was admitted")
            return
        }
        #expect(denied.key == "k")
        #expect(wait == 6_000)  // one request's worth of refill at 10/minute
        clock.advance(6_000)
        #expect(try await limiter.acquire([item("k", perMinute: 10)]) == .allowed)
        #expect(try await limiter.acquire([item("k", perMinute: 10)]) != .allowed)
        // Another key is counted apart.
        #expect(try await limiter.acquire([item("other", perMinute: 10)]) == .allowed)
    }

    @Test("a denied request charges none of its counters")
    func atomic() async throws {
        let clock = ManualClock()
        let limiter = InMemoryRateLimiter(clock: { clock.now.withLock { $0 } })
        #expect(try await limiter.acquire([item("user", perMinute: 1)]) == .allowed)
        // The IP counter would admit, the user counter does not: the IP must not be charged.
        for _ in 0..<3 {
            #expect(try await limiter.acquire([item("ip", perMinute: 3), item("user", perMinute: 1)]) != .allowed)
        }
        for _ in 0..<3 {
            #expect(try await limiter.acquire([item("ip", perMinute: 3)]) == .allowed)
        }
    }

    @Test("tokens are checked before and charged after: a call that overspends blocks the next ones")
    func tokens() async throws {
        let clock = ManualClock()
        let limiter = InMemoryRateLimiter(clock: { clock.now.withLock { $0 } })
        let check = item("t", perMinute: 1_000, cost: 1, charge: false, kind: "tokens")
        #expect(try await limiter.acquire([check]) == .allowed)
        #expect(try await limiter.acquire([check]) == .allowed)  // checking takes nothing
        try await limiter.charge([item("t", perMinute: 1_000, cost: 1_500, kind: "tokens")])
        guard case .denied(_, let wait) = try await limiter.acquire([check]) else {
            Issue.record("admitted after spending 1,500 of 1,000 tokens per minute")
            return
        }
        #expect(wait == 30_060)  // 500 over plus the one checked token, at 1,000/minute
        clock.advance(31_000)
        #expect(try await limiter.acquire([check]) == .allowed)
    }

    @Test("a zero limit is no limit")
    func unlimited() async throws {
        let limiter = InMemoryRateLimiter()
        for _ in 0..<100 { #expect(try await limiter.acquire([item("z", perMinute: 0)]) == .allowed) }
    }

    @Test("the error says which limit, with Retry-After in whole seconds")
    func error() {
        let error = AuthService.limitError(item("k", perMinute: 60), retryAfterMilliseconds: 1_200)
        #expect(error.httpStatus == 429)
        #expect(error.code == "rate_limit_exceeded")
        #expect(error.type == "requests")
        #expect(error == .rateLimited(kind: "requests", message: error.message, retryAfterSeconds: 2))
    }

    @Test("audit parameters: secrets redacted, prompts summarised, scalars kept")
    func redaction() throws {
        let body = try JSONValue.parse(Array(#"""
            {"email":"a@b.c","password":"hunter22","new_password":"x","api_key":"sk-1","csrf_token":"t","invite_code":"c",
             "max_tokens":50,"model":"m","messages":[{"role":"user","content":"hi"}],"prompt":"\#(String(repeating: "p", count: 100))",
             "nested":{"Authorization":"Bearer x","keep":true}}
            """#.utf8))
        let redacted = AuditRedaction.redact(body)
        for secret in ["password", "new_password", "api_key", "csrf_token", "invite_code"] {
            #expect(redacted[secret] == .string("[REDACTED]"), "\(secret)")
        }
        #expect(redacted["email"] == .string("a@b.c"))
        #expect(redacted["max_tokens"] == .int(50))
        #expect(redacted["messages"] == .string("[1 items]"))
        #expect(redacted["prompt"] == .string("[100 chars]"))
        #expect(redacted["nested"]?["Authorization"] == .string("[REDACTED]"))
        #expect(redacted["nested"]?["keep"] == .bool(true))
        #expect(AuditRedaction.redact(query: [("token", "abc"), ("limit", "5")]) == .object(["token": .string("[REDACTED]"), "limit": .string("5")]))
    }
}
