import ChorusCore

// The bodies of `/v1/auth`, `/v1/api-keys` and `/v1/admin`. Fields are read in the order they were
// always checked, so that of two faults the same one is reported; an empty body reads as `{}`.

/// `POST /v1/auth/register`.
struct RegisterRequest: EmptyBodyAllowed {
    var email: String
    var password: String
    var name: String?
    var inviteCode: String?

    enum CodingKeys: String, CodingKey {
        case email, password, name, inviteCode = "invite_code"
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        email = try body.requiredString(.email, maxLength: 254)
        password = try body.requiredString(.password)
        name = try body.string(.name, maxLength: 200)
        inviteCode = try body.string(.inviteCode, maxLength: 200)
    }
}

/// `POST /v1/auth/login`.
struct LoginRequest: EmptyBodyAllowed {
    enum Session: String {
        /// A browser session: an `HttpOnly` cookie and its CSRF token.
        case cookie
        /// A program's session: the token in the body, sent back as `Authorization: Bearer`.
        case bearer
    }

    var session: Session
    var email: String
    var password: String

    enum CodingKeys: String, CodingKey {
        case session, email, password
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        guard let session = Session(rawValue: try body.string(.session) ?? Session.cookie.rawValue) else {
            throw ChorusError.invalidRequest(message: "'session' must be \"cookie\" or \"bearer\".", param: "session", code: "invalid_value")
        }
        self.session = session
        email = try body.requiredString(.email, maxLength: 254)
        password = try body.requiredString(.password)
    }
}

/// `POST /v1/auth/password`.
struct PasswordChangeRequest: EmptyBodyAllowed {
    var currentPassword: String
    var newPassword: String

    enum CodingKeys: String, CodingKey {
        case currentPassword = "current_password", newPassword = "new_password"
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        currentPassword = try body.requiredString(.currentPassword)
        newPassword = try body.requiredString(.newPassword)
    }
}

/// A token budget: at most about 2 × 10¹² tokens.
private let tokenBudgets = 0...Int(Int32.max) * 1000

/// `POST /v1/api-keys`.
struct APIKeyRequest: EmptyBodyAllowed {
    var name: String
    /// nil: every permission of the credential that makes the key.
    var scopes: Set<Permission>?
    var expiresIn: Int?
    var tokenBudget: Int64?

    enum CodingKeys: String, CodingKey {
        case name, scopes, expiresIn = "expires_in", tokenBudget = "token_budget"
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        name = try body.string(.name, maxLength: 200) ?? "key"
        scopes = try body.permissions(.scopes)
        expiresIn = try body.integer(.expiresIn, in: 1...(10 * 365 * 86_400))
        tokenBudget = try body.integer(.tokenBudget, in: tokenBudgets).map(Int64.init)
    }
}

/// `POST /v1/admin/users`.
struct UserCreateRequest: EmptyBodyAllowed {
    var tokenBudget: Int64?
    var email: String
    var password: String
    var name: String?
    /// nil: `auth.default_role`.
    var role: String?

    enum CodingKeys: String, CodingKey {
        case tokenBudget = "token_budget", email, password, name, role
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        tokenBudget = try body.integer(.tokenBudget, in: tokenBudgets).map(Int64.init)
        email = try body.requiredString(.email, maxLength: 254)
        password = try body.requiredString(.password)
        name = try body.string(.name, maxLength: 200)
        role = try body.string(.role, maxLength: 100)
    }
}

/// `PATCH /v1/admin/users/{id}`: only the fields given change. Whether the role exists, whether
/// the password is strong enough and whether an administrator remains are checked by the route.
struct UserUpdateRequest: EmptyBodyAllowed {
    /// nil: unchanged; `.some(nil)` (`"name": null`): removed.
    var name: String??
    var role: String?
    var disabled: Bool?
    var password: String?
    /// nil: unchanged; `.some(nil)` (`"token_budget": null`): no budget.
    var tokenBudget: Int64??

    enum CodingKeys: String, CodingKey {
        case name, role, disabled, password, tokenBudget = "token_budget"
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        name = try body.contains(.name) ? .some(body.string(.name, maxLength: 200)) : nil
        role = try body.string(.role, maxLength: 100)
        disabled = try body.decodeIfPresent(Bool.self, forKey: .disabled)
        password = try body.string(.password)
        tokenBudget = try body.contains(.tokenBudget) ? .some(body.integer(.tokenBudget, in: tokenBudgets).map(Int64.init)) : nil
    }
}

/// `POST /v1/admin/roles`.
struct RoleCreateRequest: EmptyBodyAllowed {
    var name: String
    var permissions: Set<Permission>

    enum CodingKeys: String, CodingKey {
        case name, permissions
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        name = try body.requiredString(.name, maxLength: 100)
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || "-_:.".contains($0) }) else {
            throw ChorusError.invalidRequest(message: "A role name may contain letters, digits and - _ : . only.", param: "name", code: "invalid_value")
        }
        permissions = try body.requiredPermissions(.permissions)
    }
}

/// `PATCH /v1/admin/roles/{name}`: the role's new permissions, all of them.
struct RolePermissionsRequest: EmptyBodyAllowed {
    var permissions: Set<Permission>

    enum CodingKeys: String, CodingKey {
        case permissions
    }

    init(from decoder: any Decoder) throws {
        permissions = try decoder.container(keyedBy: CodingKeys.self).requiredPermissions(.permissions)
    }
}

/// `POST /v1/admin/invites`.
struct InviteRequest: EmptyBodyAllowed {
    /// nil: `auth.default_role`.
    var role: String?
    var expiresIn: Int

    enum CodingKeys: String, CodingKey {
        case role, expiresIn = "expires_in"
    }

    init(from decoder: any Decoder) throws {
        let body = try decoder.container(keyedBy: CodingKeys.self)
        role = try body.string(.role, maxLength: 100)
        expiresIn = try body.integer(.expiresIn, in: 1...(365 * 86_400)) ?? 7 * 86_400
    }
}
