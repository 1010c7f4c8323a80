import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird
import NIOCore

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

    // MARK: Users

    @Sendable func listUsers(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let limit = try limit(request)
        let page = try await accounts.store.users(limit: limit + 1, after: request.uri.queryParameters["after"].map(String.init))
        return try .json(AccountJSON.list(page.prefix(limit).map(AccountJSON.user), hasMore: page.count > limit))
    }

    @Sendable func createUser(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        // Every field is checked before anything is written.
        let budget = try body.int("token_budget", range: 0...Int(Int32.max) * 1000)
        var user = try await accounts.createUser(
            email: try body.requiredString("email", maxLength: 254), password: try body.requiredString("password"),
            name: try body.string("name", maxLength: 200), role: try body.string("role", maxLength: 100) ?? accounts.configuration.defaultRole)
        if let budget {
            user.tokenBudget = Int64(budget)
            try await accounts.store.update(user: user, endSessions: false)
        }
        return try .json(AccountJSON.user(user), status: .created)
    }

    @Sendable func showUser(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        try .json(AccountJSON.user(try await findUser(context)))
    }

    @Sendable func updateUser(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        var user = try await findUser(context)
        let originalRole = user.role
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        var endSessions = false
        if body.has("name") { user.name = try body.string("name", maxLength: 200) }
        if let role = try body.string("role", maxLength: 100) {
            guard try await accounts.store.role(named: role) != nil else {
                throw ChorusError.invalidRequest(message: "No role named '\(role)'.", param: "role", code: "invalid_value")
            }
            user.role = role
        }
        if let disabled = try body.bool("disabled") {
            if disabled && user.id == context.principal?.userID {
                throw ChorusError.invalidRequest(message: "You cannot disable your own account.", param: "disabled", code: "invalid_value")
            }
            endSessions = endSessions || (disabled && !user.disabled)
            user.disabled = disabled
        }
        if let password = try body.string("password") {
            try AuthService.checkPassword(password)
            user.passwordHash = try await accounts.hashPassword(password)
            endSessions = true
        }
        if body.has("token_budget") {
            user.tokenBudget = try body.int("token_budget", range: 0...Int(Int32.max) * 1000).map(Int64.init)
        }
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
        return try .json(AccountJSON.user(user))
    }

    private func findUser(_ context: ChorusRequestContext) async throws -> UserRecord {
        let id = try context.parameters.require("id")
        guard let user = try await accounts.store.user(id: id) else { throw ChorusError.notFound(what: "user", id: id) }
        return user
    }

    // MARK: Roles

    @Sendable func listRoles(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        try .json(AccountJSON.list(try await accounts.store.roles().map(AccountJSON.role)))
    }

    @Sendable func createRole(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        let name = try body.requiredString("name", maxLength: 100)
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || "-_:.".contains($0) }) else {
            throw ChorusError.invalidRequest(message: "A role name may contain letters, digits and - _ : . only.", param: "name", code: "invalid_value")
        }
        guard let permissions = try body.permissions("permissions") else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'permissions'.", param: "permissions", code: "missing_required_parameter")
        }
        let role = RoleRecord(name: name, permissions: permissions, builtin: false)
        guard try await accounts.store.createRole(role, now: nowMilliseconds()) else {
            throw ChorusError.conflict(message: "A role named '\(name)' already exists.", code: "role_exists")
        }
        return try .json(AccountJSON.role(role), status: .created)
    }

    @Sendable func updateRole(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        guard var role = try await accounts.store.role(named: name) else { throw ChorusError.notFound(what: "role", id: name) }
        guard !role.builtin else {
            throw ChorusError.conflict(message: "The built-in role '\(name)' cannot be changed; create a new role instead.", code: "role_builtin")
        }
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        guard let permissions = try body.permissions("permissions") else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'permissions'.", param: "permissions", code: "missing_required_parameter")
        }
        try await accounts.store.updateRole(name: name, permissions: permissions)
        role.permissions = permissions
        return try .json(AccountJSON.role(role))
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

    @Sendable func createInvite(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        let role = try body.string("role", maxLength: 100) ?? accounts.configuration.defaultRole
        guard try await accounts.store.role(named: role) != nil else {
            throw ChorusError.invalidRequest(message: "No role named '\(role)'.", param: "role", code: "invalid_value")
        }
        let expiresIn = try body.int("expires_in", range: 1...(365 * 86_400)) ?? 7 * 86_400
        let code = "inv_" + Secrets.random(32)
        let id = Identifier.make("invite_")
        let now = nowMilliseconds()
        let expiresAt = now + Int64(expiresIn) * 1000
        try await accounts.store.createInvite(id: id, codeHash: Secrets.hash(code), role: role, createdBy: context.ownerID, now: now, expiresAt: expiresAt)
        return try .json(.object([
            "object": .string("invite"), "id": .string(id), "code": .string(code), "role": .string(role),
            "expires_at": AccountJSON.seconds(expiresAt),
        ]), status: .created)
    }

    // MARK: Audit

    @Sendable func audit(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let limit = try limit(request)
        let query = request.uri.queryParameters
        let filter = SQLAuthStore.AuditFilter(
            before: query["before"].map(String.init), userID: query["user_id"].map(String.init),
            method: query["method"].map(String.init), pathPrefix: query["path_prefix"].map(String.init))
        let page = try await accounts.store.audit(limit: limit + 1, filter: filter)
        let entries = page.prefix(limit).map { entry in
            JSONValue.object([
                "id": .string(entry.id), "object": .string("audit_entry"), "created_at": AccountJSON.seconds(entry.createdAt),
                "created_at_ms": .int(Int(entry.createdAt)),
                "user_id": entry.userID.map(JSONValue.string) ?? .null, "api_key_id": entry.apiKeyID.map(JSONValue.string) ?? .null,
                "ip": entry.ip.map(JSONValue.string) ?? .null, "method": .string(entry.method), "path": .string(entry.path),
                "params": entry.params, "status": .int(entry.status), "duration_ms": .int(Int(entry.durationMilliseconds)),
                "request_id": .string(entry.requestID),
            ])
        }
        return try .json(AccountJSON.list(Array(entries), hasMore: page.count > limit))
    }
}
