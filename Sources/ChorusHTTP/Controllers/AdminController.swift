import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird

/// `/v1/admin/users`, `/v1/admin/roles`, `/v1/admin/invites` (`admin:users`) and
/// `/v1/admin/audit` (`admin:audit`); `AccessPolicy` checks the permissions.
struct AdminController: Sendable {
    let accounts: AuthService

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/v1/admin/users", use: listUsers)
        router.post("/v1/admin/users", use: createUser)
        router.get("/v1/admin/users/:id", use: showUser)
        router.patch("/v1/admin/users/:id", use: updateUser)
        router.get("/v1/admin/roles", use: listRoles)
        router.post("/v1/admin/roles", use: createRole)
        router.patch("/v1/admin/roles/:name", use: updateRole)
        router.delete("/v1/admin/roles/:name", use: deleteRole)
        router.post("/v1/admin/invites", use: createInvite)
        router.get("/v1/admin/audit", use: audit)
    }

    private func limit(_ request: Request, default value: Int = 50) throws -> Int {
        guard let text = request.uri.queryParameters["limit"] else { return value }
        guard let limit = Int(text), (1...500).contains(limit) else {
            throw ChorusError.invalidRequest(message: "'limit' must be an integer between 1 and 500.", param: "limit", code: "invalid_value")
        }
        return limit
    }

    /// A time in the query as Unix seconds (fractions allowed), in milliseconds.
    private func seconds(_ request: Request, _ name: String) throws -> Int64? {
        guard let text = request.uri.queryParameters[Substring(name)] else { return nil }
        guard let value = Double(text), value.isFinite, value >= 0, value < 1e11 else {
            throw ChorusError.invalidRequest(message: "'\(name)' must be a time in Unix seconds.", param: name, code: "invalid_value")
        }
        return Int64(value * 1000)
    }

    // MARK: Users

    @Sendable func listUsers(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<UserObject>> {
        let limit = try limit(request)
        let page = try await accounts.store.users(limit: limit + 1, after: request.uri.queryParameters["after"].map(String.init))
        return ListObject(page.prefix(limit).map(UserObject.init), hasMore: page.count > limit).uncached()
    }

    @Sendable func createUser(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<UserObject> {
        // Every field is checked before anything is written.
        let body = try await request.decode(as: UserCreateRequest.self, context: context)
        var user = try await accounts.createUser(
            email: body.email, password: body.password, name: body.name, role: body.role ?? accounts.configuration.defaultRole)
        if let budget = body.tokenBudget {
            user.tokenBudget = budget
            try await accounts.store.update(user: user, endSessions: false)
        }
        return UserObject(user).uncached(.created)
    }

    @Sendable func showUser(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<UserObject> {
        UserObject(try await findUser(context)).uncached()
    }

    @Sendable func updateUser(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<UserObject> {
        var user = try await findUser(context)
        let originalRole = user.role
        let body = try await request.decode(as: UserUpdateRequest.self, context: context)
        var endSessions = false
        if let name = body.name { user.name = name }
        if let role = body.role {
            guard try await accounts.store.role(named: role) != nil else {
                throw ChorusError.invalidRequest(message: "No role named '\(role)'.", param: "role", code: "invalid_value")
            }
            user.role = role
        }
        if let disabled = body.disabled {
            if disabled && user.id == context.principal?.userID {
                throw ChorusError.invalidRequest(message: "You cannot disable your own account.", param: "disabled", code: "invalid_value")
            }
            endSessions = endSessions || (disabled && !user.disabled)
            user.disabled = disabled
        }
        if let password = body.password {
            try AuthService.checkPassword(password)
            user.passwordHash = try await accounts.hashPassword(password)
            endSessions = true
        }
        if let budget = body.tokenBudget { user.tokenBudget = budget }
        // Never leave the server without someone who can manage users.
        if originalRole != user.role || user.disabled {
            let administrators = try await accounts.store.enabledAdministrators()
            let newRole = try await accounts.store.role(named: user.role)
            let stillAdministrator = !user.disabled && (newRole?.permissions.contains(.adminUsers) ?? false)
            if administrators.contains(user.id), !stillAdministrator, administrators.count <= 1 {
                throw ChorusError.conflict(message: "This is the last enabled administrator; make another one first.", code: "last_administrator")
            }
        }
        user.updatedAt = nowMilliseconds()
        try await accounts.store.update(user: user, endSessions: endSessions)
        return UserObject(user).uncached()
    }

    private func findUser(_ context: ChorusRequestContext) async throws -> UserRecord {
        let id = try context.parameters.require("id")
        guard let user = try await accounts.store.user(id: id) else { throw ChorusError.notFound(what: "user", id: id) }
        return user
    }

    // MARK: Roles

    @Sendable func listRoles(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<RoleObject>> {
        ListObject(try await accounts.store.roles().map(RoleObject.init)).uncached()
    }

    @Sendable func createRole(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<RoleObject> {
        let body = try await request.decode(as: RoleCreateRequest.self, context: context)
        let role = RoleRecord(name: body.name, permissions: body.permissions, builtin: false)
        guard try await accounts.store.createRole(role, now: nowMilliseconds()) else {
            throw ChorusError.conflict(message: "A role named '\(body.name)' already exists.", code: "role_exists")
        }
        return RoleObject(role).uncached(.created)
    }

    @Sendable func updateRole(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<RoleObject> {
        let name = try context.parameters.require("name")
        guard var role = try await accounts.store.role(named: name) else { throw ChorusError.notFound(what: "role", id: name) }
        guard !role.builtin else {
            throw ChorusError.conflict(message: "The built-in role '\(name)' cannot be changed; create a new role instead.", code: "role_builtin")
        }
        let body = try await request.decode(as: RolePermissionsRequest.self, context: context)
        try await accounts.store.updateRole(name: name, permissions: body.permissions)
        role.permissions = body.permissions
        return RoleObject(role).uncached()
    }

    @Sendable func deleteRole(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        switch try await accounts.store.deleteRole(name: name) {
        case .deleted: return Response(status: .noContent)
        case .notFound: throw ChorusError.notFound(what: "role", id: name)
        case .builtin: throw ChorusError.conflict(message: "The built-in role '\(name)' cannot be deleted.", code: "role_builtin")
        case .inUse: throw ChorusError.conflict(message: "The role '\(name)' is still given to users.", code: "role_in_use")
        }
    }

    // MARK: Invites

    @Sendable func createInvite(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<InviteObject> {
        let body = try await request.decode(as: InviteRequest.self, context: context)
        let role = body.role ?? accounts.configuration.defaultRole
        guard try await accounts.store.role(named: role) != nil else {
            throw ChorusError.invalidRequest(message: "No role named '\(role)'.", param: "role", code: "invalid_value")
        }
        let code = "inv_" + Secrets.random(32)
        let id = Identifier.make("invite_")
        let now = nowMilliseconds()
        let expiresAt = now + Int64(body.expiresIn) * 1000
        try await accounts.store.createInvite(id: id, codeHash: Secrets.hash(code), role: role, createdBy: context.ownerID, now: now, expiresAt: expiresAt)
        return InviteObject(id: id, code: code, role: role, expiresAt: expiresAt / 1000).uncached(.created)
    }

    // MARK: Audit

    @Sendable func audit(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<AuditEntryObject>> {
        let limit = try limit(request)
        let query = request.uri.queryParameters
        let filter = SQLAuthStore.AuditFilter(
            before: query["before"].map(String.init), userID: query["user_id"].map(String.init),
            method: query["method"].map(String.init), pathPrefix: query["path_prefix"].map(String.init),
            since: try seconds(request, "since"), until: try seconds(request, "until"))
        let page = try await accounts.store.audit(limit: limit + 1, filter: filter)
        return ListObject(page.prefix(limit).map(AuditEntryObject.init), hasMore: page.count > limit).uncached()
    }
}
