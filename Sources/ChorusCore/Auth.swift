import Crypto

/// What a role may do. Routes name the permission they need in one table (`AccessPolicy`).
public enum Permission: String, Sendable, CaseIterable, Codable, Comparable {
    /// Chat completions and the model list.
    case chat
    case conversations
    /// Batches, tasks and their events.
    case tasks
    case files
    /// One's own API keys.
    case keys
    /// Users, roles, invites, anyone's API keys.
    case adminUsers = "admin:users"
    /// Queues, workers, dead letters.
    case adminOps = "admin:ops"
    /// The audit log.
    case adminAudit = "admin:audit"
    /// Reading and changing every user's conversations, tasks and batches.
    case adminData = "admin:data"
    /// `GET /metrics`.
    case adminMetrics = "admin:metrics"

    public static func < (lhs: Permission, rhs: Permission) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Parses a list of permission names; nil names the first unknown one.
    public static func parse(_ names: [String]) -> Result<Set<Permission>, UnknownPermission> {
        var permissions = Set<Permission>()
        for name in names {
            guard let permission = Permission(rawValue: name) else { return .failure(UnknownPermission(name: name)) }
            permissions.insert(permission)
        }
        return .success(permissions)
    }

    public struct UnknownPermission: Error {
        public let name: String
    }
}

/// The built-in roles. Others are defined by administrators.
public enum BuiltinRole {
    public static let admin = "admin"
    public static let user = "user"
    public static let permissions: [String: Set<Permission>] = [
        admin: Set(Permission.allCases),
        user: [.chat, .conversations, .tasks, .files, .keys],
    ]
}

/// A user account.
public struct UserRecord: Sendable, Equatable {
    public var id: String
    public var email: String
    public var name: String?
    public var passwordHash: String
    public var role: String
    public var disabled: Bool
    public var tokenBudget: Int64?
    public var tokensUsed: Int64
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, email: String, name: String?, passwordHash: String, role: String, disabled: Bool = false, tokenBudget: Int64? = nil, tokensUsed: Int64 = 0, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.email = email
        self.name = name
        self.passwordHash = passwordHash
        self.role = role
        self.disabled = disabled
        self.tokenBudget = tokenBudget
        self.tokensUsed = tokensUsed
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// An API key; only the SHA-256 of the secret is stored.
public struct APIKeyRecord: Sendable, Equatable {
    public var id: String
    public var userID: String
    public var name: String
    /// The first characters of the secret, to recognise it in a list.
    public var prefix: String
    public var keyHash: String
    /// nil: all of the user's permissions.
    public var scopes: Set<Permission>?
    public var createdAt: Int64
    public var expiresAt: Int64?
    public var lastUsedAt: Int64?
    public var revokedAt: Int64?
    public var tokenBudget: Int64?
    public var tokensUsed: Int64

    public init(id: String, userID: String, name: String, prefix: String, keyHash: String, scopes: Set<Permission>?, createdAt: Int64, expiresAt: Int64?, lastUsedAt: Int64? = nil, revokedAt: Int64? = nil, tokenBudget: Int64? = nil, tokensUsed: Int64 = 0) {
        self.id = id
        self.userID = userID
        self.name = name
        self.prefix = prefix
        self.keyHash = keyHash
        self.scopes = scopes
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
        self.tokenBudget = tokenBudget
        self.tokensUsed = tokensUsed
    }
}

/// A role and its permissions.
public struct RoleRecord: Sendable, Equatable {
    public var name: String
    public var permissions: Set<Permission>
    public var builtin: Bool

    public init(name: String, permissions: Set<Permission>, builtin: Bool) {
        self.name = name
        self.permissions = permissions
        self.builtin = builtin
    }
}

/// One audited request. `params` is already redacted.
public struct AuditEntry: Sendable, Equatable {
    public var id: String
    public var createdAt: Int64
    public var userID: String?
    public var apiKeyID: String?
    public var ip: String?
    public var method: String
    public var path: String
    public var params: JSONValue
    public var status: Int
    public var durationMilliseconds: Int64
    public var requestID: String

    public init(id: String, createdAt: Int64, userID: String?, apiKeyID: String?, ip: String?, method: String, path: String, params: JSONValue, status: Int, durationMilliseconds: Int64, requestID: String) {
        self.id = id
        self.createdAt = createdAt
        self.userID = userID
        self.apiKeyID = apiKeyID
        self.ip = ip
        self.method = method
        self.path = path
        self.params = params
        self.status = status
        self.durationMilliseconds = durationMilliseconds
        self.requestID = requestID
    }
}
