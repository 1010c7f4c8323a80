import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import Logging
import SQLKit
import Testing

/// Two processes (two `AuthService`s, each with its own cache) over one database and one shared
/// accounts version, as gateways and workers share PostgreSQL and the version in Redis.
@Suite("Credential cache: served from memory, stale after any change anywhere")
struct CredentialCacheTests {
    func withTwoProcesses(_ body: @Sendable (_ a: AuthService, _ b: AuthService, _ backend: any SQLBackend) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let logger = Logger(label: "test")
        let backend = try await SQLiteBackend.open(path: folder.appendingPathComponent("cache.sqlite").path, logger: logger)
        do {
            try await Migrator(backend: backend, logger: logger).migrate()
            let shared = LocalAccountsVersion()
            var configuration = ChorusConfiguration()
            configuration.auth.bcryptCost = 4
            let make = {
                AuthService(
                    store: SQLAuthStore(backend: backend, version: shared), configuration: configuration.auth, limits: configuration.limits,
                    limiter: InMemoryRateLimiter(), cacheCredentials: true, logger: logger)
            }
            let a = make(), b = make()
            try await a.store.ensureBuiltinRoles(now: nowMilliseconds())
            try await body(a, b, backend)
        } catch {
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }

    /// A new user with the `user` role and an API key for them.
    func userWithKey(_ accounts: AuthService, budget: Int64?) async throws -> (UserRecord, APIKeyRecord, String) {
        let user = try await accounts.createUser(email: "\(UUID().uuidString)@example.com", password: "a long enough password", name: nil, role: BuiltinRole.user)
        let (key, secret) = try await accounts.createAPIKey(
            userID: user.id, rolePermissions: BuiltinRole.permissions[BuiltinRole.user] ?? [], name: "k", scopes: nil,
            expiresInSeconds: nil, tokenBudget: budget)
        return (user, key, secret)
    }

    @Test("a key revoked by one process is refused by the other on its next request, though it was cached there")
    func revocationReachesTheOtherCache() async throws {
        try await withTwoProcesses { a, b, backend in
            let (user, key, secret) = try await userWithKey(a, budget: nil)
            #expect(try await b.principal(bearer: secret)?.apiKeyID == key.id)

            // Changed behind the store's back (no new version): the other process still answers
            // from its cache, which shows that it does not read the database on every request.
            try await backend.write("UPDATE api_keys SET revoked_at = 1 WHERE id = \(bind: key.id)")
            #expect(try await b.principal(bearer: secret)?.apiKeyID == key.id)

            // Through the store, as every route revokes: the version moves, the cache entry is stale.
            try await backend.write("UPDATE api_keys SET revoked_at = NULL WHERE id = \(bind: key.id)")
            #expect(try await a.store.revokeAPIKey(id: key.id, userID: user.id, now: nowMilliseconds()) != nil)
            #expect(try await b.principal(bearer: secret) == nil)
        }
    }

    @Test("tokens charged by one process (a worker) spend the budget the other (a gateway) has cached")
    func chargesReachTheOtherCache() async throws {
        try await withTwoProcesses { a, b, _ in
            let (_, _, secret) = try await userWithKey(a, budget: 10)
            let before = try #require(try await b.principal(bearer: secret))
            #expect(before.keyBudget?.spent == false)
            try await b.admitChat(principal: before, ip: "127.0.0.1")

            await a.settle(billing: a.billing(principal: before, ip: "127.0.0.1"), tokens: 12)
            let after = try #require(try await b.principal(bearer: secret))
            #expect(after.keyBudget?.used == 12)
            await #expect(throws: ChorusError.self) { try await b.admitChat(principal: after, ip: "127.0.0.1") }
        }
    }
}
