import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import Hummingbird
import NIOCore

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

    @Sendable func register(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        let user = try await accounts.register(
            email: try body.requiredString("email", maxLength: 254), password: try body.requiredString("password"),
            name: try body.string("name", maxLength: 200), inviteCode: try body.string("invite_code", maxLength: 200))
        return try .json(AccountJSON.user(user), status: .created)
    }

    @Sendable func login(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        let mode = try body.string("session") ?? "cookie"
        guard mode == "cookie" || mode == "bearer" else {
            throw ChorusError.invalidRequest(message: "'session' must be \"cookie\" or \"bearer\".", param: "session", code: "invalid_value")
        }
        let (user, token, expiresAt) = try await accounts.login(email: try body.requiredString("email", maxLength: 254), password: try body.requiredString("password"))
        var object: [String: JSONValue] = [
            "object": .string("session"), "user": AccountJSON.user(user), "expires_at": AccountJSON.seconds(expiresAt),
        ]
        if mode == "bearer" {
            object["token"] = .string(token)
            return try .json(.object(object))
        }
        object["csrf_token"] = .string(Secrets.csrfToken(forSession: token))
        var response = try Response.json(.object(object))
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

    @Sendable func me(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        if let principal = context.principal, principal.method == .disabled {
            let local = UserRecord(id: principal.userID, email: "local", name: "Local administrator (accounts are off)", passwordHash: "", role: principal.role, createdAt: 0, updatedAt: 0)
            return try .json(.object([
                "object": .string("me"), "user": AccountJSON.user(local),
                "permissions": .array(principal.permissions.sorted().map { .string($0.rawValue) }), "auth": .string("disabled"),
            ]))
        }
        guard let principal = context.principal, let user = try await accounts.store.user(id: principal.userID) else {
            throw ChorusError.unauthorized(message: "Not signed in.", code: "missing_credentials")
        }
        var object: [String: JSONValue] = [
            "object": .string("me"), "user": AccountJSON.user(user),
            "permissions": .array(principal.permissions.sorted().map { .string($0.rawValue) }),
            "auth": .string(principal.method.rawValue),
        ]
        if let keyID = principal.apiKeyID { object["api_key_id"] = .string(keyID) }
        if principal.viaCookie, let token = request.cookies[AuthMiddleware.sessionCookie]?.value {
            object["csrf_token"] = .string(Secrets.csrfToken(forSession: token))
        }
        return try .json(.object(object))
    }

    @Sendable func changePassword(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        guard let principal = context.principal, principal.method != .disabled else {
            throw ChorusError.invalidRequest(message: "Accounts are turned off on this server.", param: nil, code: "auth_disabled")
        }
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        try await accounts.changePassword(principal: principal, current: try body.requiredString("current_password"), new: try body.requiredString("new_password"))
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

    @Sendable func createKey(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        guard let principal = context.principal, principal.method != .disabled else {
            throw ChorusError.invalidRequest(message: "Accounts are turned off on this server; no API key is needed.", param: nil, code: "auth_disabled")
        }
        let body = try await JSONBody.read(request, limit: 64 * 1024)
        // A key never carries more than the credential that made it.
        let (key, secret) = try await accounts.createAPIKey(
            userID: principal.userID, rolePermissions: principal.permissions, name: try body.string("name", maxLength: 200) ?? "key",
            scopes: try body.permissions("scopes"), expiresInSeconds: try body.int("expires_in", range: 1...(10 * 365 * 86_400)),
            tokenBudget: try body.int("token_budget", range: 0...Int(Int32.max) * 1000).map(Int64.init))
        return try .json(AccountJSON.apiKey(key, secret: secret), status: .created)
    }

    @Sendable func listKeys(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        var userID = context.ownerID
        if let other = request.uri.queryParameters["user_id"].map(String.init), other != userID {
            try context.require(.adminUsers)
            userID = other
        }
        let keys = try await accounts.store.apiKeys(userID: userID)
        return try .json(AccountJSON.list(keys.map { AccountJSON.apiKey($0) }))
    }

    @Sendable func revokeKey(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        let owner: String? = context.principal?.has(.adminUsers) == true ? nil : context.ownerID
        guard let key = try await accounts.store.revokeAPIKey(id: id, userID: owner, now: nowMilliseconds()) else {
            throw ChorusError.notFound(what: "API key", id: id)
        }
        return try .json(AccountJSON.apiKey(key))
    }
}
