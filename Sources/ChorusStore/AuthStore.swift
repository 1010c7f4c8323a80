public import ChorusCore
import SQLKit
import Synchronization

/// What a credential resolves to: the user, the role's permissions, and the key or session used.
public struct Credential: Sendable, Equatable {
    public var user: UserRecord
    public var rolePermissions: Set<Permission>
    public var apiKey: APIKeyRecord?
    public var sessionID: String?
    public var sessionExpiresAt: Int64?
}

/// The version of the accounts data that a cache of resolved credentials is valid for: it
/// changes after every committed change to roles, users, sessions, keys or token budgets.
public protocol AccountsVersion: Sendable {
    /// The version now; an entry cached under another version is stale.
    func current() async throws -> String
    /// Called after a change committed and before the request that made it answers, so that the
    /// next request anywhere sees the new version.
    func advance() async throws
}

/// The version kept in this process: right when it is the only writer of accounts (`chorus serve`).
public final class LocalAccountsVersion: AccountsVersion {
    private let counter = Atomic<Int>(0)

    public init() {}

    public func current() async throws -> String { String(counter.load(ordering: .acquiring)) }

    public func advance() async throws { counter.add(1, ordering: .releasing) }
}

/// Users, roles, sessions, API keys, invites and the audit log.
public struct SQLAuthStore: Sendable {
    let backend: any SQLBackend
    /// Advanced by every change made through this store (not by the audit log).
    public let version: any AccountsVersion

    public init(backend: any SQLBackend, version: any AccountsVersion = LocalAccountsVersion()) {
        self.backend = backend
        self.version = version
    }

    /// A write transaction that may change what a credential resolves to. The version advances
    /// even when the transaction failed: a failed commit may still have committed.
    private func change<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        let result: T
        do {
            result = try await backend.transaction(body)
        } catch {
            try? await version.advance()
            throw error
        }
        try await version.advance()
        return result
    }

    // MARK: Roles

    /// Creates the built-in roles if they are missing (idempotent, safe when processes start together).
    public func ensureBuiltinRoles(now: Int64) async throws {
        try await change { db in
            for (name, permissions) in BuiltinRole.permissions.sorted(by: { $0.key < $1.key }) {
                try await db.raw("""
                    INSERT INTO roles (name, permissions, builtin, created_at)
                    VALUES (\(bind: name), \(bind: Self.text(permissions)), 1, \(bind: now))
                    ON CONFLICT (name) DO UPDATE SET permissions = excluded.permissions, builtin = 1
                    """).run()
            }
        }
    }

    public func roles() async throws -> [RoleRecord] {
        try await backend.database.raw("SELECT * FROM roles ORDER BY name").all().map(Self.decodeRole)
    }

    public func role(named name: String) async throws -> RoleRecord? {
        try await backend.database.raw("SELECT * FROM roles WHERE name = \(bind: name)").first().map(Self.decodeRole)
    }

    /// false if the name is taken.
    public func createRole(_ role: RoleRecord, now: Int64) async throws -> Bool {
        try await change { db in
            if try await db.raw("SELECT name FROM roles WHERE name = \(bind: role.name)").first() != nil { return false }
            try await db.raw("""
                INSERT INTO roles (name, permissions, builtin, created_at)
                VALUES (\(bind: role.name), \(bind: Self.text(role.permissions)), 0, \(bind: now))
                """).run()
            return true
        }
    }

    public func updateRole(name: String, permissions: Set<Permission>) async throws {
        try await change { db in
            try await db.raw("UPDATE roles SET permissions = \(bind: Self.text(permissions)) WHERE name = \(bind: name) AND builtin = 0").run()
        }
    }

    public enum RoleDeletion: Sendable { case deleted, notFound, builtin, inUse }

    public func deleteRole(name: String) async throws -> RoleDeletion {
        try await change { db in
            guard let row = try await db.raw("SELECT builtin FROM roles WHERE name = \(bind: name)").first() else { return .notFound }
            if try row.decode(column: "builtin", as: Int64.self) != 0 { return .builtin }
            if try await db.raw("SELECT id FROM users WHERE role = \(bind: name) LIMIT 1").first() != nil { return .inUse }
            try await db.raw("DELETE FROM roles WHERE name = \(bind: name)").run()
            return .deleted
        }
    }

    // MARK: Users

    public func userCount() async throws -> Int {
        Int(try await backend.database.raw("SELECT COUNT(*) AS n FROM users").first()?.decode(column: "n", as: Int64.self) ?? 0)
    }

    /// false if the email is taken. With `invite`, the invite is used in the same transaction
    /// (false if it was used meanwhile).
    public func createUser(_ user: UserRecord, usingInvite inviteID: String? = nil) async throws -> Bool {
        try await change { db in
            if try await db.raw("SELECT id FROM users WHERE email = \(bind: user.email)").first() != nil { return false }
            if let inviteID {
                let used = try await db.raw("""
                    UPDATE invites SET used_by = \(bind: user.id), used_at = \(bind: user.createdAt)
                    WHERE id = \(bind: inviteID) AND used_by IS NULL RETURNING id
                    """).first()
                if used == nil { throw ChorusError.forbidden(message: "This invite code has already been used.", code: "invalid_invite") }
            }
            return try await db.raw("""
                INSERT INTO users (id, email, name, password_hash, role, disabled, token_budget, tokens_used, created_at, updated_at)
                VALUES (\(bind: user.id), \(bind: user.email), \(bind: user.name), \(bind: user.passwordHash), \(bind: user.role),
                        \(bind: user.disabled ? 1 : 0), \(bind: user.tokenBudget), \(bind: user.tokensUsed), \(bind: user.createdAt), \(bind: user.updatedAt))
                ON CONFLICT (email) DO NOTHING RETURNING id
                """).first() != nil
        }
    }

    /// Enabled users whose role carries `admin:users` (who could repair the others).
    public func enabledAdministrators() async throws -> [String] {
        try await backend.database.raw("""
            SELECT u.id AS id, r.permissions AS permissions FROM users u JOIN roles r ON r.name = u.role WHERE u.disabled = 0
            """).all().compactMap { row in
                Self.permissions(try row.decode(column: "permissions", as: String.self)).contains(.adminUsers)
                    ? try row.decode(column: "id", as: String.self) : nil
            }
    }

    public func user(id: String) async throws -> UserRecord? {
        try await backend.database.raw("SELECT * FROM users WHERE id = \(bind: id)").first().map(Self.decodeUser)
    }

    public func user(email: String) async throws -> UserRecord? {
        try await backend.database.raw("SELECT * FROM users WHERE email = \(bind: email)").first().map(Self.decodeUser)
    }

    /// A page of users in id order, after `after`.
    public func users(limit: Int, after: String?) async throws -> [UserRecord] {
        if let after {
            return try await backend.database.raw("SELECT * FROM users WHERE id > \(bind: after) ORDER BY id LIMIT \(bind: limit)").all().map(Self.decodeUser)
        }
        return try await backend.database.raw("SELECT * FROM users ORDER BY id LIMIT \(bind: limit)").all().map(Self.decodeUser)
    }

    /// Writes the user's changeable fields; disabling (or a new password) ends their sessions.
    public func update(user: UserRecord, endSessions: Bool) async throws {
        try await change { db in
            try await db.raw("""
                UPDATE users SET name = \(bind: user.name), password_hash = \(bind: user.passwordHash), role = \(bind: user.role),
                    disabled = \(bind: user.disabled ? 1 : 0), token_budget = \(bind: user.tokenBudget), updated_at = \(bind: user.updatedAt)
                WHERE id = \(bind: user.id)
                """).run()
            if endSessions {
                try await db.raw("DELETE FROM sessions WHERE user_id = \(bind: user.id)").run()
            }
        }
    }

    // MARK: Sessions

    public func createSession(id: String, tokenHash: String, userID: String, now: Int64, expiresAt: Int64) async throws {
        try await change { db in
            try await db.raw("""
                INSERT INTO sessions (id, token_hash, user_id, created_at, expires_at)
                VALUES (\(bind: id), \(bind: tokenHash), \(bind: userID), \(bind: now), \(bind: expiresAt))
                """).run()
            // Expired sessions of this user are dropped as new ones are made.
            try await db.raw("DELETE FROM sessions WHERE user_id = \(bind: userID) AND expires_at < \(bind: now)").run()
        }
    }

    public func deleteSession(id: String) async throws {
        try await change { db in
            try await db.raw("DELETE FROM sessions WHERE id = \(bind: id)").run()
        }
    }

    /// Ends every session of the user except `keeping`.
    public func deleteSessions(userID: String, keeping: String?) async throws {
        try await change { db in
            try await db.raw("DELETE FROM sessions WHERE user_id = \(bind: userID) AND id <> \(bind: keeping ?? "")").run()
        }
    }

    /// The live session with this token hash, with its enabled user and role; nil otherwise.
    public func credential(sessionTokenHash: String, now: Int64) async throws -> Credential? {
        guard let row = try await backend.database.raw("""
            SELECT s.id AS session_id, s.expires_at AS session_expires_at, r.permissions AS role_permissions, u.*
            FROM sessions s JOIN users u ON u.id = s.user_id JOIN roles r ON r.name = u.role
            WHERE s.token_hash = \(bind: sessionTokenHash) AND s.expires_at > \(bind: now) AND u.disabled = 0
            """).first() else { return nil }
        return Credential(
            user: try Self.decodeUser(row), rolePermissions: try Self.permissions(row.decode(column: "role_permissions", as: String.self)),
            apiKey: nil, sessionID: try row.decode(column: "session_id", as: String.self),
            sessionExpiresAt: try row.decode(column: "session_expires_at", as: Int64.self))
    }

    // MARK: API keys

    public func create(apiKey: APIKeyRecord) async throws {
        try await change { db in
            try await db.raw("""
                INSERT INTO api_keys (id, key_hash, prefix, user_id, name, scopes, created_at, expires_at, last_used_at, revoked_at, token_budget, tokens_used)
                VALUES (\(bind: apiKey.id), \(bind: apiKey.keyHash), \(bind: apiKey.prefix), \(bind: apiKey.userID), \(bind: apiKey.name),
                        \(bind: apiKey.scopes.map(Self.text)), \(bind: apiKey.createdAt), \(bind: apiKey.expiresAt), NULL, NULL,
                        \(bind: apiKey.tokenBudget), 0)
                """).run()
        }
    }

    /// The live key with this hash (not revoked, not expired), with its enabled user and role.
    public func credential(apiKeyHash: String, now: Int64) async throws -> Credential? {
        guard let row = try await backend.database.raw("""
            SELECT k.id AS key_id, k.prefix AS key_prefix, k.name AS key_name, k.scopes AS key_scopes, k.created_at AS key_created_at,
                   k.expires_at AS key_expires_at, k.last_used_at AS key_last_used_at, k.token_budget AS key_token_budget,
                   k.tokens_used AS key_tokens_used, r.permissions AS role_permissions, u.*
            FROM api_keys k JOIN users u ON u.id = k.user_id JOIN roles r ON r.name = u.role
            WHERE k.key_hash = \(bind: apiKeyHash) AND k.revoked_at IS NULL
              AND (k.expires_at IS NULL OR k.expires_at > \(bind: now)) AND u.disabled = 0
            """).first() else { return nil }
        let user = try Self.decodeUser(row)
        let key = APIKeyRecord(
            id: try row.decode(column: "key_id", as: String.self), userID: user.id,
            name: try row.decode(column: "key_name", as: String.self), prefix: try row.decode(column: "key_prefix", as: String.self),
            keyHash: apiKeyHash, scopes: try row.decode(column: "key_scopes", as: String?.self).map(Self.permissions),
            createdAt: try row.decode(column: "key_created_at", as: Int64.self), expiresAt: try row.decode(column: "key_expires_at", as: Int64?.self),
            lastUsedAt: try row.decode(column: "key_last_used_at", as: Int64?.self), revokedAt: nil,
            tokenBudget: try row.decode(column: "key_token_budget", as: Int64?.self), tokensUsed: try row.decode(column: "key_tokens_used", as: Int64.self))
        return Credential(user: user, rolePermissions: try Self.permissions(row.decode(column: "role_permissions", as: String.self)), apiKey: key)
    }

    public func apiKeys(userID: String) async throws -> [APIKeyRecord] {
        try await backend.database.raw("SELECT * FROM api_keys WHERE user_id = \(bind: userID) ORDER BY created_at, id").all().map(Self.decodeKey)
    }

    public func apiKey(id: String) async throws -> APIKeyRecord? {
        try await backend.database.raw("SELECT * FROM api_keys WHERE id = \(bind: id)").first().map(Self.decodeKey)
    }

    /// Revokes the key (`userID` nil: whoever owns it). Returns the key, or nil if there is none.
    public func revokeAPIKey(id: String, userID: String?, now: Int64) async throws -> APIKeyRecord? {
        try await change { db in
            guard let row = try await db.raw("SELECT * FROM api_keys WHERE id = \(bind: id)").first() else { return nil }
            var key = try Self.decodeKey(row)
            if let userID, key.userID != userID { return nil }
            if key.revokedAt == nil {
                try await db.raw("UPDATE api_keys SET revoked_at = \(bind: now) WHERE id = \(bind: id)").run()
                key.revokedAt = now
            }
            return key
        }
    }

    /// Not a change for credential caches: what a key resolves to stays the same.
    public func touchAPIKey(id: String, now: Int64) async throws {
        try await backend.write("UPDATE api_keys SET last_used_at = \(bind: now) WHERE id = \(bind: id)")
    }

    // MARK: Token budgets

    /// Adds real usage to the user's and the key's counters (only those with a budget are written).
    public func chargeTokens(userID: String?, apiKeyID: String?, tokens: Int64) async throws {
        guard tokens > 0, userID != nil || apiKeyID != nil else { return }
        try await change { db in
            if let userID {
                try await db.raw("UPDATE users SET tokens_used = tokens_used + \(bind: tokens) WHERE id = \(bind: userID)").run()
            }
            if let apiKeyID {
                try await db.raw("UPDATE api_keys SET tokens_used = tokens_used + \(bind: tokens) WHERE id = \(bind: apiKeyID)").run()
            }
        }
    }

    // MARK: Invites

    public func createInvite(id: String, codeHash: String, role: String, createdBy: String, now: Int64, expiresAt: Int64?) async throws {
        try await change { db in
            try await db.raw("""
                INSERT INTO invites (id, code_hash, role, created_by, created_at, expires_at, used_by, used_at)
                VALUES (\(bind: id), \(bind: codeHash), \(bind: role), \(bind: createdBy), \(bind: now), \(bind: expiresAt), NULL, NULL)
                """).run()
        }
    }

    /// The unused, unexpired invite with this code hash: its id and role.
    public func invite(codeHash: String, now: Int64) async throws -> (id: String, role: String)? {
        guard let row = try await backend.database.raw("""
            SELECT id, role FROM invites WHERE code_hash = \(bind: codeHash) AND used_by IS NULL
              AND (expires_at IS NULL OR expires_at > \(bind: now))
            """).first() else { return nil }
        return (try row.decode(column: "id", as: String.self), try row.decode(column: "role", as: String.self))
    }

    // MARK: Audit log

    /// Writes a batch of entries in one transaction.
    public func append(audit entries: [AuditEntry]) async throws {
        guard !entries.isEmpty else { return }
        try await backend.transaction { db in
            for chunk in stride(from: 0, to: entries.count, by: 100).map({ entries[$0..<min($0 + 100, entries.count)] }) {
                var query = SQLQueryString("INSERT INTO audit_log (id, created_at, user_id, api_key_id, ip, method, path, params, status, duration_ms, request_id) VALUES ")
                for (index, entry) in chunk.enumerated() {
                    if index > 0 { query.appendLiteral(", ") }
                    query.appendInterpolation(unsafeRaw: "(")
                    query.appendInterpolation(bind: entry.id); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.createdAt); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.userID); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.apiKeyID); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.ip); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.method); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.path); query.appendLiteral(", ")
                    query.appendInterpolation(bind: String(decoding: try entry.params.encoded(), as: UTF8.self)); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.status); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.durationMilliseconds); query.appendLiteral(", ")
                    query.appendInterpolation(bind: entry.requestID)
                    query.appendLiteral(")")
                }
                try await db.raw(query).run()
            }
        }
    }

    public struct AuditFilter: Sendable {
        public var before: String?
        public var userID: String?
        public var method: String?
        public var pathPrefix: String?
        /// Entries written at or after `since` and before `until` (Unix milliseconds).
        public var since: Int64?
        public var until: Int64?
        public init(before: String? = nil, userID: String? = nil, method: String? = nil, pathPrefix: String? = nil,
                    since: Int64? = nil, until: Int64? = nil) {
            self.before = before
            self.userID = userID
            self.method = method
            self.pathPrefix = pathPrefix
            self.since = since
            self.until = until
        }
    }

    /// Newest first; ids sort by time, so `before` pages backwards.
    public func audit(limit: Int, filter: AuditFilter) async throws -> [AuditEntry] {
        var query = SQLQueryString("SELECT * FROM audit_log WHERE 1 = 1")
        if let before = filter.before { query.appendLiteral(" AND id < "); query.appendInterpolation(bind: before) }
        if let user = filter.userID { query.appendLiteral(" AND user_id = "); query.appendInterpolation(bind: user) }
        if let method = filter.method { query.appendLiteral(" AND method = "); query.appendInterpolation(bind: method.uppercased()) }
        if let prefix = filter.pathPrefix {
            // CAST: PostgreSQL's substr takes an integer, and an Int binds as a bigint.
            query.appendLiteral(" AND substr(path, 1, CAST("); query.appendInterpolation(bind: prefix.count)
            query.appendLiteral(" AS INTEGER)) = "); query.appendInterpolation(bind: prefix)
        }
        if let since = filter.since { query.appendLiteral(" AND created_at >= "); query.appendInterpolation(bind: since) }
        if let until = filter.until { query.appendLiteral(" AND created_at < "); query.appendInterpolation(bind: until) }
        query.appendLiteral(" ORDER BY id DESC LIMIT "); query.appendInterpolation(bind: limit)
        return try await backend.database.raw(query).all().map { row in
            AuditEntry(
                id: try row.decode(column: "id", as: String.self), createdAt: try row.decode(column: "created_at", as: Int64.self),
                userID: try row.decode(column: "user_id", as: String?.self), apiKeyID: try row.decode(column: "api_key_id", as: String?.self),
                ip: try row.decode(column: "ip", as: String?.self), method: try row.decode(column: "method", as: String.self),
                path: try row.decode(column: "path", as: String.self),
                params: (try? JSONValue.parse(Array(try row.decode(column: "params", as: String.self).utf8))) ?? .null,
                status: Int(try row.decode(column: "status", as: Int64.self)),
                durationMilliseconds: try row.decode(column: "duration_ms", as: Int64.self),
                requestID: try row.decode(column: "request_id", as: String.self))
        }
    }

    // MARK: Rows

    static func text(_ permissions: Set<Permission>) -> String {
        permissions.map(\.rawValue).sorted().joined(separator: " ")
    }

    static func permissions(_ text: String) -> Set<Permission> {
        Set(text.split(separator: " ").compactMap { Permission(rawValue: String($0)) })
    }

    static func decodeRole(_ row: any SQLRow) throws -> RoleRecord {
        RoleRecord(
            name: try row.decode(column: "name", as: String.self),
            permissions: permissions(try row.decode(column: "permissions", as: String.self)),
            builtin: try row.decode(column: "builtin", as: Int64.self) != 0)
    }

    static func decodeUser(_ row: any SQLRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode(column: "id", as: String.self), email: try row.decode(column: "email", as: String.self),
            name: try row.decode(column: "name", as: String?.self), passwordHash: try row.decode(column: "password_hash", as: String.self),
            role: try row.decode(column: "role", as: String.self), disabled: try row.decode(column: "disabled", as: Int64.self) != 0,
            tokenBudget: try row.decode(column: "token_budget", as: Int64?.self), tokensUsed: try row.decode(column: "tokens_used", as: Int64.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self), updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }

    static func decodeKey(_ row: any SQLRow) throws -> APIKeyRecord {
        APIKeyRecord(
            id: try row.decode(column: "id", as: String.self), userID: try row.decode(column: "user_id", as: String.self),
            name: try row.decode(column: "name", as: String.self), prefix: try row.decode(column: "prefix", as: String.self),
            keyHash: try row.decode(column: "key_hash", as: String.self),
            scopes: try row.decode(column: "scopes", as: String?.self).map(permissions),
            createdAt: try row.decode(column: "created_at", as: Int64.self), expiresAt: try row.decode(column: "expires_at", as: Int64?.self),
            lastUsedAt: try row.decode(column: "last_used_at", as: Int64?.self), revokedAt: try row.decode(column: "revoked_at", as: Int64?.self),
            tokenBudget: try row.decode(column: "token_budget", as: Int64?.self), tokensUsed: try row.decode(column: "tokens_used", as: Int64.self))
    }
}

