import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird

/// `/v1/auth` (register, login, logout, me, password) and `/v1/api-keys`.
struct AuthController: Sendable {
    let accounts: AuthService
    let maxBodyBytes: Int

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.post("/v1/auth/register", use: register)
        router.post("/v1/auth/login", use: login)
        router.post("/v1/auth/logout", use: logout)
        router.get("/v1/auth/me", use: me)
        router.post("/v1/auth/password", use: changePassword)
        router.post("/v1/api-keys", use: createKey)
        router.get("/v1/api-keys", use: listKeys)
        router.delete("/v1/api-keys/:id", use: revokeKey)
    }

    @Sendable func register(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<UserObject> {
        let body = try await request.decode(as: RegisterRequest.self, context: context)
        let user = try await accounts.register(email: body.email, password: body.password, name: body.name, inviteCode: body.inviteCode)
        return UserObject(user).uncached(.created)
    }

    @Sendable func login(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<SessionObject> {
        let body = try await request.decode(as: LoginRequest.self, context: context)
        let (user, token, expiresAt) = try await accounts.login(email: body.email, password: body.password)
        var session = SessionObject(user: UserObject(user), expiresAt: expiresAt / 1000)
        guard body.session == .cookie else {
            session.token = token
            return session.uncached()
        }
        session.csrfToken = Secrets.csrfToken(forSession: token)
        var response = session.uncached()
        response.setCookie(sessionCookie(token, maxAge: accounts.configuration.sessionTTLSeconds, context: context))
        return response
    }

    @Sendable func logout(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        guard let principal = context.principal, let sessionID = principal.sessionID else {
            throw ChorusError.invalidRequest(
                message: "This request is not signed in with a session; revoke API keys with DELETE /v1/api-keys/{id}.",
                param: nil, code: "not_a_session")
        }
        try await accounts.store.deleteSession(id: sessionID)
        var response = Response(status: .noContent, headers: [.cacheControl: "no-store"])
        response.setCookie(sessionCookie("", maxAge: 0, context: context))
        return response
    }

    @Sendable func me(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<MeObject> {
        if let principal = context.principal, principal.method == .disabled {
            let local = UserRecord(id: principal.userID, email: "local", name: "Local administrator (accounts are off)", passwordHash: "", role: principal.role, createdAt: 0, updatedAt: 0)
            return MeObject(user: UserObject(local), principal: principal).uncached()
        }
        guard let principal = context.principal, let user = try await accounts.store.user(id: principal.userID) else {
            throw ChorusError.unauthorized(message: "Not signed in.", code: "missing_credentials")
        }
        var csrfToken: String?
        if principal.viaCookie, let token = request.cookies[AuthMiddleware.sessionCookie]?.value {
            csrfToken = Secrets.csrfToken(forSession: token)
        }
        return MeObject(user: UserObject(user), principal: principal, csrfToken: csrfToken).uncached()
    }

    @Sendable func changePassword(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        guard let principal = context.principal, principal.method != .disabled else {
            throw ChorusError.invalidRequest(message: "Accounts are turned off on this server.", param: nil, code: "auth_disabled")
        }
        let body = try await request.decode(as: PasswordChangeRequest.self, context: context)
        try await accounts.changePassword(principal: principal, current: body.currentPassword, new: body.newPassword)
        return Response(status: .noContent, headers: [.cacheControl: "no-store"])
    }

    private func sessionCookie(_ value: String, maxAge: Int, context: ChorusRequestContext) -> Cookie {
        let secure: Bool
        switch accounts.configuration.cookieSecure {
        case .true: secure = true
        case .false: secure = false
        case .auto: secure = context.viaHTTPS
        }
        return Cookie(name: AuthMiddleware.sessionCookie, value: value, maxAge: maxAge, path: "/", secure: secure, httpOnly: true, sameSite: .lax)
    }

    // MARK: API keys

    @Sendable func createKey(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<APIKeyObject> {
        guard let principal = context.principal, principal.method != .disabled else {
            throw ChorusError.invalidRequest(message: "Accounts are turned off on this server; no API key is needed.", param: nil, code: "auth_disabled")
        }
        let body = try await request.decode(as: APIKeyRequest.self, context: context)
        // A key never carries more than the credential that made it.
        let (key, secret) = try await accounts.createAPIKey(
            userID: principal.userID, rolePermissions: principal.permissions, name: body.name,
            scopes: body.scopes, expiresInSeconds: body.expiresIn, tokenBudget: body.tokenBudget)
        return APIKeyObject(key, secret: secret).uncached(.created)
    }

    @Sendable func listKeys(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<APIKeyObject>> {
        var userID = context.ownerID
        if let other = request.uri.queryParameters["user_id"].map(String.init), other != userID {
            try context.require(.adminUsers)
            userID = other
        }
        let keys = try await accounts.store.apiKeys(userID: userID)
        return ListObject(keys.map { APIKeyObject($0) }).uncached()
    }

    @Sendable func revokeKey(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<APIKeyObject> {
        let id = try context.parameters.require("id")
        let owner: String? = context.principal?.has(.adminUsers) == true ? nil : context.ownerID
        guard let key = try await accounts.store.revokeAPIKey(id: id, userID: owner, now: nowMilliseconds()) else {
            throw ChorusError.notFound(what: "API key", id: id)
        }
        return APIKeyObject(key).uncached()
    }
}
