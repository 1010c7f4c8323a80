public import ChorusCore
public import ChorusStore
import Foundation
import HummingbirdBcrypt
public import Logging
import NIOPosix
import Synchronization

/// Accounts: who a credential belongs to, registration and login, API keys, bootstrap, and the
/// rate-limit and budget bookkeeping around chat calls. The HTTP layer turns its answers into
/// routes; the rules live here.
public final class AuthService: Sendable {
    public let store: SQLAuthStore
    public let configuration: ChorusConfiguration.Auth
    public let limits: ChorusConfiguration.Limits
    public let limiter: any RateLimiter
    private let logger: Logger
    /// When each API key's `last_used_at` was last written by this process (written at most once a minute).
    private let lastUsedWrites = Mutex<[String: Int64]>([:])
    /// Verified against when an email is unknown, so a login takes as long either way. Made on
    /// the first login, not at start-up (workers and CLI commands never need it).
    private let decoy = Mutex<String?>(nil)
    /// Resolved credentials by token hash, valid while the accounts version stays the same
    /// (`SQLAuthStore.version`: this process's counter in embedded mode, a value in Redis that
    /// every gateway and worker advances in the distributed one).
    private let cache = Mutex<[String: CachedPrincipal]>([:])
    private let cacheCredentials: Bool
    /// A backstop: an entry is read again after this long even if the version stayed the same
    /// (a change whose version could not be advanced is then stale for at most this long).
    static let cacheMaxAgeMilliseconds: Int64 = 60_000

    private struct CachedPrincipal {
        let principal: Principal
        let expiresAt: Int64?
        let version: String
        let cachedAt: Int64
    }

    /// - Parameter cacheCredentials: keep resolved credentials in memory. Revocation stays
    ///   immediate as long as every process that changes accounts advances the same
    ///   `store.version`.
    public init(store: SQLAuthStore, configuration: ChorusConfiguration.Auth, limits: ChorusConfiguration.Limits, limiter: any RateLimiter, cacheCredentials: Bool = false, logger: Logger) {
        self.cacheCredentials = cacheCredentials
        self.store = store
        self.configuration = configuration
        self.limits = limits
        self.limiter = limiter
        self.logger = logger
    }

    // MARK: Start

    /// Creates the built-in roles, and the first administrator when there is no user: with the
    /// password in `CHORUS_ADMIN_PASSWORD`, or a random one passed to `announce` (printed once).
    public func prepare(environment: [String: String], announce: @Sendable (String) -> Void) async throws {
        try await store.ensureBuiltinRoles(now: nowMilliseconds())
        guard configuration.enabled, try await store.userCount() == 0 else { return }
        let email = configuration.bootstrapAdminEmail
        let given = environment["CHORUS_ADMIN_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        let password = given ?? Secrets.random(20)
        if given != nil { try Self.checkPassword(password) }
        do {
            _ = try await createUser(email: email, password: password, name: "Administrator", role: BuiltinRole.admin)
        } catch ChorusError.conflict {
            return  // another process starting at the same time made it
        }
        if given == nil {
            announce("chorus first administrator: \(email) password \(password) (shown once)")
        } else {
            announce("chorus first administrator: \(email) (password from CHORUS_ADMIN_PASSWORD)")
        }
    }

    // MARK: Credentials

    /// The principal of an `Authorization: Bearer` value: an API key or a session token.
    public func principal(bearer token: String) async throws -> Principal? {
        let hash = Secrets.hash(token)
        if token.hasPrefix(Secrets.apiKeyPrefix) {
            return try await cached(hash) { try await self.resolveKey(hash: hash) }
        }
        return try await principal(session: token, hash: hash, viaCookie: false)
    }

    /// The principal of a session token (from the cookie or a bearer header).
    public func principal(session token: String, viaCookie: Bool) async throws -> Principal? {
        try await principal(session: token, hash: Secrets.hash(token), viaCookie: viaCookie)
    }

    private func principal(session token: String, hash: String, viaCookie: Bool) async throws -> Principal? {
        guard token.hasPrefix(Secrets.sessionPrefix),
              var principal = try await cached(hash, { try await self.resolveSession(hash: hash) }) else { return nil }
        principal.viaCookie = viaCookie
        return principal
    }

    /// - Parameter hash: the token's stored form, the cache's key and the lookup's.
    private func cached(_ hash: String, _ resolve: @Sendable () async throws -> (Principal, expiresAt: Int64?)?) async throws -> Principal? {
        guard cacheCredentials else { return try await resolve()?.0 }
        let version: String
        do {
            version = try await store.version.current()
        } catch {
            // Without the version nothing cached can be trusted: read the database.
            logger.warning("could not read the accounts version; resolving the credential without the cache", metadata: ["error": "\(error)"])
            return try await resolve()?.0
        }
        let now = nowMilliseconds()
        if let hit = cache.withLock({ $0[hash] }), hit.version == version, now - hit.cachedAt < Self.cacheMaxAgeMilliseconds,
           hit.expiresAt.map({ $0 > now }) ?? true {
            if let keyID = hit.principal.apiKeyID { noteUse(keyID: keyID, lastUsedAt: nil, now: now) }
            return hit.principal
        }
        // The version was read before the lookup: an entry resolved while something changed is stale at once.
        guard let (principal, expiresAt) = try await resolve() else { return nil }
        cache.withLock { entries in
            if entries.count > 10_000 { entries.removeAll() }
            entries[hash] = CachedPrincipal(principal: principal, expiresAt: expiresAt, version: version, cachedAt: now)
        }
        return principal
    }

    private func resolveKey(hash: String) async throws -> (Principal, expiresAt: Int64?)? {
        let now = nowMilliseconds()
        guard let credential = try await store.credential(apiKeyHash: hash, now: now), let key = credential.apiKey else { return nil }
        noteUse(keyID: key.id, lastUsedAt: key.lastUsedAt, now: now)
        let permissions = key.scopes.map { credential.rolePermissions.intersection($0) } ?? credential.rolePermissions
        var principal = Principal(userID: credential.user.id, role: credential.user.role, permissions: permissions, method: .apiKey, apiKeyID: key.id)
        principal.userBudget = credential.user.tokenBudget.map { .init(limit: $0, used: credential.user.tokensUsed) }
        principal.keyBudget = key.tokenBudget.map { .init(limit: $0, used: key.tokensUsed) }
        return (principal, key.expiresAt)
    }

    private func resolveSession(hash: String) async throws -> (Principal, expiresAt: Int64?)? {
        guard let credential = try await store.credential(sessionTokenHash: hash, now: nowMilliseconds()) else { return nil }
        var principal = Principal(
            userID: credential.user.id, role: credential.user.role, permissions: credential.rolePermissions,
            method: .session, sessionID: credential.sessionID)
        principal.userBudget = credential.user.tokenBudget.map { .init(limit: $0, used: credential.user.tokensUsed) }
        return (principal, credential.sessionExpiresAt)
    }

    private func noteUse(keyID: String, lastUsedAt: Int64?, now: Int64) {
        let due = lastUsedWrites.withLock { writes -> Bool in
            let last = writes[keyID] ?? lastUsedAt ?? 0
            guard now - last >= 60_000 else { return false }
            writes[keyID] = now
            if writes.count > 100_000 { writes.removeAll() }
            return true
        }
        guard due else { return }
        let store = self.store, logger = self.logger
        Task {
            do { try await store.touchAPIKey(id: keyID, now: now) } catch {
                logger.warning("could not record an API key's last use", metadata: ["key_id": "\(keyID)", "error": "\(error)"])
            }
        }
    }

    // MARK: Users

    public static func normalize(email: String) throws -> String {
        let email = email.trimmingCharacters(in: .whitespaces).lowercased()
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.utf8.count <= 254, parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              !email.contains(where: { $0.isWhitespace || $0.isNewline }) else {
            throw ChorusError.invalidRequest(message: "'email' must be an email address.", param: "email", code: "invalid_value")
        }
        return email
    }

    public static func checkPassword(_ password: String, param: String = "password") throws {
        guard password.count >= 8 else {
            throw ChorusError.invalidRequest(message: "The password must have at least 8 characters.", param: param, code: "password_too_short")
        }
        // bcrypt reads 72 bytes; longer passwords would be silently truncated.
        guard password.utf8.count <= 72 else {
            throw ChorusError.invalidRequest(message: "The password must be at most 72 bytes.", param: param, code: "password_too_long")
        }
    }

    public func hashPassword(_ password: String) async throws -> String {
        let cost = UInt8(configuration.bcryptCost)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public func verifyPassword(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// A new user with `role` (which must exist).
    public func createUser(email: String, password: String, name: String?, role: String, inviteID: String? = nil) async throws -> UserRecord {
        let email = try Self.normalize(email: email)
        try Self.checkPassword(password)
        guard try await store.role(named: role) != nil else {
            throw ChorusError.invalidRequest(message: "No role named '\(role)'.", param: "role", code: "invalid_value")
        }
        let now = nowMilliseconds()
        let user = UserRecord(
            id: Identifier.make("user_"), email: email, name: name, passwordHash: try await hashPassword(password),
            role: role, createdAt: now, updatedAt: now)
        guard try await store.createUser(user, usingInvite: inviteID) else {
            throw ChorusError.conflict(message: "A user with this email already exists.", code: "email_taken")
        }
        return user
    }

    /// Self-registration, as `auth.registration` allows.
    public func register(email: String, password: String, name: String?, inviteCode: String?) async throws -> UserRecord {
        switch configuration.registration {
        case .closed:
            throw ChorusError.forbidden(message: "Registration is closed on this server; ask an administrator for an account.", code: "registration_closed")
        case .open:
            return try await createUser(email: email, password: password, name: name, role: configuration.defaultRole)
        case .invite:
            guard let inviteCode, let invite = try await store.invite(codeHash: Secrets.hash(inviteCode), now: nowMilliseconds()) else {
                throw ChorusError.forbidden(message: "Registration needs a valid invite code.", code: "invalid_invite")
            }
            return try await createUser(email: email, password: password, name: name, role: invite.role, inviteID: invite.id)
        }
    }

    /// Checks the password and opens a session: the user, the session token (secret) and its expiry.
    public func login(email: String, password: String) async throws -> (user: UserRecord, token: String, expiresAt: Int64) {
        let email = (try? Self.normalize(email: email)) ?? ""
        let user = email.isEmpty ? nil : try await store.user(email: email)
        let hash: String
        if let stored = user?.passwordHash { hash = stored } else { hash = try await decoyHash() }
        let valid = try await verifyPassword(password, hash: hash)
        guard let user, valid, !user.disabled else {
            throw ChorusError.unauthorized(message: "Incorrect email or password.", code: "invalid_credentials")
        }
        let token = Secrets.newSessionToken()
        let now = nowMilliseconds()
        let expiresAt = now + Int64(configuration.sessionTTLSeconds) * 1000
        try await store.createSession(id: Identifier.make("sess_"), tokenHash: Secrets.hash(token), userID: user.id, now: now, expiresAt: expiresAt)
        return (user, token, expiresAt)
    }

    private func decoyHash() async throws -> String {
        if let hash = decoy.withLock({ $0 }) { return hash }
        let hash = try await hashPassword(Secrets.random(16))
        decoy.withLock { $0 = $0 ?? hash }
        return hash
    }

    public func changePassword(principal: Principal, current: String, new: String) async throws {
        try Self.checkPassword(new, param: "new_password")
        guard var user = try await store.user(id: principal.userID), try await verifyPassword(current, hash: user.passwordHash) else {
            throw ChorusError.forbidden(message: "The current password is incorrect.", code: "invalid_credentials")
        }
        user.passwordHash = try await hashPassword(new)
        user.updatedAt = nowMilliseconds()
        try await store.update(user: user, endSessions: false)
        try await store.deleteSessions(userID: user.id, keeping: principal.sessionID)
    }

    // MARK: API keys

    /// A new key for `userID`; the secret is returned once and only its hash is kept.
    public func createAPIKey(userID: String, rolePermissions: Set<Permission>, name: String, scopes: Set<Permission>?, expiresInSeconds: Int?, tokenBudget: Int64?) async throws -> (APIKeyRecord, String) {
        if let scopes, let extra = scopes.subtracting(rolePermissions).sorted().first {
            throw ChorusError.invalidRequest(message: "A key cannot have the scope '\(extra.rawValue)', which its user does not have.", param: "scopes", code: "invalid_scope")
        }
        let secret = Secrets.newAPIKey()
        let now = nowMilliseconds()
        let key = APIKeyRecord(
            id: Identifier.make("key_"), userID: userID, name: name, prefix: String(secret.prefix(Secrets.apiKeyPrefix.count + 4)),
            keyHash: Secrets.hash(secret), scopes: scopes, createdAt: now,
            expiresAt: expiresInSeconds.map { now + Int64($0) * 1000 }, tokenBudget: tokenBudget)
        try await store.create(apiKey: key)
        return (key, secret)
    }

    // MARK: Rate limits and budgets

    /// The request counters of one request: per IP always, per user and key once signed in.
    public static func requestItems(limits: ChorusConfiguration.Limits, principal: Principal?, ip: String) -> [RateLimitItem] {
        var items = [RateLimitItem(kind: "requests", scope: "IP address", key: "ip:\(ip):r", perMinute: limits.ipRequestsPerMinute, cost: 1, charge: true)]
        if let principal, principal.method != .disabled {
            items.append(RateLimitItem(kind: "requests", scope: "user", key: "user:\(principal.userID):r", perMinute: limits.userRequestsPerMinute, cost: 1, charge: true))
            if let key = principal.apiKeyID {
                items.append(RateLimitItem(kind: "requests", scope: "API key", key: "key:\(key):r", perMinute: limits.keyRequestsPerMinute, cost: 1, charge: true))
            }
        }
        return items.filter { $0.perMinute > 0 }
    }

    /// The token counters of a chat call (`cost` is what is charged after the call).
    /// - Parameter userID: nil when accounts are off (then only the IP is counted).
    public func tokenItems(userID: String?, apiKeyID: String?, ip: String, cost: Int64 = 1) -> [RateLimitItem] {
        var items = [RateLimitItem(kind: "tokens", scope: "IP address", key: "ip:\(ip):t", perMinute: limits.ipTokensPerMinute, cost: cost, charge: false)]
        if let userID {
            items.append(RateLimitItem(kind: "tokens", scope: "user", key: "user:\(userID):t", perMinute: limits.userTokensPerMinute, cost: cost, charge: false))
            if let apiKeyID {
                items.append(RateLimitItem(kind: "tokens", scope: "API key", key: "key:\(apiKeyID):t", perMinute: limits.keyTokensPerMinute, cost: cost, charge: false))
            }
        }
        return items.filter { $0.perMinute > 0 }
    }

    /// Before a chat call: the minute's tokens are not spent, and neither the user's nor the key's
    /// token budget. Throws 429.
    public func admitChat(principal: Principal, ip: String) async throws {
        let items = tokenItems(userID: principal.method == .disabled ? nil : principal.userID, apiKeyID: principal.apiKeyID, ip: ip)
        if !items.isEmpty, case .denied(let item, let wait) = try await limiter.acquire(items) {
            throw Self.limitError(item, retryAfterMilliseconds: wait)
        }
        // The budgets were read with the credential, on this request.
        if let budget = principal.userBudget, budget.spent {
            throw ChorusError.quotaExceeded(message: "You exceeded your token budget (\(budget.limit) tokens); ask an administrator to raise it.")
        }
        if let budget = principal.keyBudget, budget.spent {
            throw ChorusError.quotaExceeded(message: "This API key exceeded its token budget (\(budget.limit) tokens).")
        }
    }

    /// After a chat call: charges its real usage to the per-minute counters and the budgets.
    public func settleChat(principal: Principal, ip: String, tokens: Int) async {
        await charge(
            userID: principal.method == .disabled ? nil : principal.userID, apiKeyID: principal.apiKeyID, ip: ip,
            userBudget: principal.userBudget != nil, keyBudget: principal.keyBudget != nil, tokens: tokens)
    }

    /// Who pays for an asynchronous chat task: kept in the task's parameters, so that the worker
    /// that runs it (maybe in another process) charges the same counters and budgets.
    public func billing(principal: Principal, ip: String) -> JSONValue {
        var object: [String: JSONValue] = [
            "ip": .string(ip), "user_budget": .bool(principal.userBudget != nil), "key_budget": .bool(principal.keyBudget != nil),
        ]
        if principal.method != .disabled { object["user_id"] = .string(principal.userID) }
        if let key = principal.apiKeyID { object["api_key_id"] = .string(key) }
        return .object(object)
    }

    /// Charges a finished task's usage as `billing` says.
    public func settle(billing: JSONValue, tokens: Int) async {
        await charge(
            userID: billing["user_id"]?.stringValue, apiKeyID: billing["api_key_id"]?.stringValue, ip: billing["ip"]?.stringValue ?? "unknown",
            userBudget: billing["user_budget"]?.boolValue ?? false, keyBudget: billing["key_budget"]?.boolValue ?? false, tokens: tokens)
    }

    private func charge(userID: String?, apiKeyID: String?, ip: String, userBudget: Bool, keyBudget: Bool, tokens: Int) async {
        guard tokens > 0 else { return }
        do {
            try await limiter.charge(tokenItems(userID: userID, apiKeyID: apiKeyID, ip: ip, cost: Int64(tokens)))
            // Only counters with a budget need the write.
            try await store.chargeTokens(userID: userBudget ? userID : nil, apiKeyID: keyBudget ? apiKeyID : nil, tokens: Int64(tokens))
        } catch {
            logger.warning("could not charge token usage", metadata: ["user_id": "\(userID ?? "-")", "error": "\(error)"])
        }
    }

    public static func limitError(_ item: RateLimitItem, retryAfterMilliseconds: Int64) -> ChorusError {
        let seconds = max(1, Int((Double(retryAfterMilliseconds) / 1000).rounded(.up)))
        return .rateLimited(
            kind: item.kind,
            message: "Rate limit reached for \(item.kind) per minute (limit \(item.perMinute)) on this \(item.scope). Please try again in \(seconds) s.",
            retryAfterSeconds: seconds)
    }
}
