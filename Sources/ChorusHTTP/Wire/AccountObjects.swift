import ChorusCore
import Hummingbird

// Accounts on the wire: times in whole seconds, never a password hash or a key's hash. Routes send
// them `uncached()`.

/// A user account.
struct UserObject: ResponseEncodable, Sendable {
    let object = "user"
    var id: String
    var email: String
    @Nullable var name: String?
    var role: String
    var disabled: Bool
    @Nullable var tokenBudget: Int64?
    var tokensUsed: Int64
    var createdAt: Int64

    init(_ user: UserRecord) {
        id = user.id
        email = user.email
        name = user.name
        role = user.role
        disabled = user.disabled
        tokenBudget = user.tokenBudget
        tokensUsed = user.tokensUsed
        createdAt = user.createdAt / 1000
    }

    enum CodingKeys: String, CodingKey {
        case object, id, email, name, role, disabled, tokenBudget = "token_budget", tokensUsed = "tokens_used", createdAt = "created_at"
    }
}

/// An API key: its secret only once, in the answer that creates it.
struct APIKeyObject: ResponseEncodable, Sendable {
    let object = "api_key"
    var id: String
    var userID: String
    var name: String
    var prefix: String
    /// null: all of the user's permissions.
    @Nullable var scopes: [Permission]?
    var createdAt: Int64
    @Nullable var expiresAt: Int64?
    @Nullable var lastUsedAt: Int64?
    @Nullable var revokedAt: Int64?
    @Nullable var tokenBudget: Int64?
    var tokensUsed: Int64
    /// Left out except when the key is made.
    var key: String?

    init(_ key: APIKeyRecord, secret: String? = nil) {
        id = key.id
        userID = key.userID
        name = key.name
        prefix = key.prefix
        scopes = key.scopes?.sorted()
        createdAt = key.createdAt / 1000
        expiresAt = key.expiresAt.map { $0 / 1000 }
        lastUsedAt = key.lastUsedAt.map { $0 / 1000 }
        revokedAt = key.revokedAt.map { $0 / 1000 }
        tokenBudget = key.tokenBudget
        tokensUsed = key.tokensUsed
        self.key = secret
    }

    enum CodingKeys: String, CodingKey {
        case object, id, userID = "user_id", name, prefix, scopes, createdAt = "created_at", expiresAt = "expires_at"
        case lastUsedAt = "last_used_at", revokedAt = "revoked_at", tokenBudget = "token_budget", tokensUsed = "tokens_used", key
    }
}

/// A role and its permissions.
struct RoleObject: ResponseEncodable, Sendable {
    let object = "role"
    var name: String
    var permissions: [Permission]
    var builtin: Bool

    init(_ role: RoleRecord) {
        name = role.name
        permissions = role.permissions.sorted()
        builtin = role.builtin
    }

    enum CodingKeys: String, CodingKey {
        case object, name, permissions, builtin
    }
}

/// The answer to `POST /v1/auth/login`.
struct SessionObject: ResponseEncodable, Sendable {
    let object = "session"
    var user: UserObject
    var expiresAt: Int64
    /// A bearer session's token; left out for a cookie session.
    var token: String?
    /// A cookie session's CSRF token; left out for a bearer session.
    var csrfToken: String?

    enum CodingKeys: String, CodingKey {
        case object, user, expiresAt = "expires_at", token, csrfToken = "csrf_token"
    }
}

/// `GET /v1/auth/me`: who is asking, with what, and what they may do.
struct MeObject: ResponseEncodable, Sendable {
    let object = "me"
    var user: UserObject
    var permissions: [Permission]
    /// `session`, `api_key`, or `disabled` (accounts are off).
    var auth: String
    var apiKeyID: String?
    /// For a cookie session.
    var csrfToken: String?

    init(user: UserObject, principal: Principal, csrfToken: String? = nil) {
        self.user = user
        permissions = principal.permissions.sorted()
        auth = principal.method.rawValue
        apiKeyID = principal.apiKeyID
        self.csrfToken = csrfToken
    }

    enum CodingKeys: String, CodingKey {
        case object, user, permissions, auth, apiKeyID = "api_key_id", csrfToken = "csrf_token"
    }
}

/// A new invitation; its code is shown only here.
struct InviteObject: ResponseEncodable, Sendable {
    let object = "invite"
    var id: String
    var code: String
    var role: String
    var expiresAt: Int64

    enum CodingKeys: String, CodingKey {
        case object, id, code, role, expiresAt = "expires_at"
    }
}

/// One request in the audit log; `params` was redacted before it was stored.
struct AuditEntryObject: ResponseEncodable, Sendable {
    let object = "audit_entry"
    var id: String
    var createdAt: Int64
    var createdAtMilliseconds: Int64
    @Nullable var userID: String?
    @Nullable var apiKeyID: String?
    @Nullable var ip: String?
    var method: String
    var path: String
    var params: JSONValue
    var status: Int
    var durationMilliseconds: Int64
    var requestID: String

    init(_ entry: AuditEntry) {
        id = entry.id
        createdAt = entry.createdAt / 1000
        createdAtMilliseconds = entry.createdAt
        userID = entry.userID
        apiKeyID = entry.apiKeyID
        ip = entry.ip
        method = entry.method
        path = entry.path
        params = entry.params
        status = entry.status
        durationMilliseconds = entry.durationMilliseconds
        requestID = entry.requestID
    }

    enum CodingKeys: String, CodingKey {
        case object, id, createdAt = "created_at", createdAtMilliseconds = "created_at_ms", userID = "user_id", apiKeyID = "api_key_id", ip
        case method, path, params, status, durationMilliseconds = "duration_ms", requestID = "request_id"
    }
}
