public import ChorusStore
import Foundation
public import Logging

/// Accounts, rate limits and the audit log, as one shape of Chorus needs them.
public struct Security: Sendable {
    public let accounts: AuthService
    public let limiter: any RateLimiter
    public let audit: AuditLog
    let enabled: Bool
    let logger: Logger

    /// - Parameters:
    ///   - accountsVersion: what every change to accounts advances, and what cached credentials
    ///     are checked against: this process's counter for `chorus serve` (the database's only
    ///     writer of accounts), Redis for gateways and workers.
    ///   - cacheCredentials: keep resolved credentials in memory (valid while the version holds).
    public init(
        configuration: ChorusConfiguration, backend: any SQLBackend, limiter: any RateLimiter,
        accountsVersion: any AccountsVersion = LocalAccountsVersion(), cacheCredentials: Bool = false, logger: Logger
    ) {
        let store = SQLAuthStore(backend: backend, version: accountsVersion)
        self.accounts = AuthService(
            store: store, configuration: configuration.auth, limits: configuration.limits, limiter: limiter,
            cacheCredentials: cacheCredentials, logger: logger)
        self.limiter = limiter
        self.audit = AuditLog(store: store, logger: logger)
        self.enabled = configuration.auth.enabled
        self.logger = logger
    }

    /// Built-in roles, the first administrator, and the warning when accounts are off. Call after migrating.
    public func prepare(environment: [String: String]) async throws {
        try await accounts.prepare(environment: environment) { line in
            // Straight to the terminal, never through the logger (a password must not reach log files).
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        if !enabled {
            let warning = "WARNING: authentication is disabled (auth.enabled: false): anyone who can reach this server has full access to it"
            FileHandle.standardOutput.write(Data((warning + "\n").utf8))
            logger.warning("\(warning)")
        }
    }
}
