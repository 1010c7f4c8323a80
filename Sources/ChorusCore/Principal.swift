import Crypto

/// Who is making a request, as established by the authentication middleware.
public struct Principal: Sendable, Equatable {
    public enum Method: String, Sendable {
        case session
        case apiKey = "api_key"
        /// Accounts are turned off: every request is the local administrator.
        case disabled
    }

    public var userID: String
    public var role: String
    /// The role's permissions, narrowed by the API key's scopes.
    public var permissions: Set<Permission>
    public var method: Method
    public var apiKeyID: String?
    public var sessionID: String?
    /// The session came from the cookie (so mutating requests need the CSRF token).
    public var viaCookie: Bool
    /// Token budgets as read with the credential (nil: none).
    public var userBudget: TokenBudget?
    public var keyBudget: TokenBudget?

    public struct TokenBudget: Sendable, Equatable {
        public var limit: Int64
        public var used: Int64
        public init(limit: Int64, used: Int64) {
            self.limit = limit
            self.used = used
        }
        public var spent: Bool { used >= limit }
    }

    public init(userID: String, role: String, permissions: Set<Permission>, method: Method, apiKeyID: String? = nil, sessionID: String? = nil, viaCookie: Bool = false) {
        self.userID = userID
        self.role = role
        self.permissions = permissions
        self.method = method
        self.apiKeyID = apiKeyID
        self.sessionID = sessionID
        self.viaCookie = viaCookie
    }

    /// The principal of every request when accounts are off.
    public static let local = Principal(userID: localOwnerID, role: BuiltinRole.admin, permissions: Set(Permission.allCases), method: .disabled)

    public func has(_ permission: Permission) -> Bool { permissions.contains(permission) }
}
