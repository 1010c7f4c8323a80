import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import SQLKit
import Testing

@testable import ChorusHTTP

@Suite("Accounts: credentials, permissions, ownership, limits, audit")
struct AccountsTests {
    static let adminPassword = "correct horse battery"

    /// A harness with accounts on (the default) and a known first administrator.
    func withAccounts(_ configure: @escaping @Sendable (inout ChorusConfiguration) -> Void = { _ in }, _ body: @Sendable (Harness) async throws -> Void) async throws {
        try await Harness.run(environment: ["CHORUS_ADMIN_PASSWORD": Self.adminPassword], configure: configure, body)
    }

    func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

    func login(_ h: Harness, _ email: String, _ password: String) async throws -> String {
        let response = try await h.post("/v1/auth/login", json: #"{"email":"\#(email)","password":"\#(password)","session":"bearer"}"#)
        #expect(response.status == .ok, "\(String(buffer: response.body))")
        return try #require(try h.json(response)["token"]?.stringValue)
    }

    func createKey(_ h: Harness, token: String, body: String = #"{"name":"test"}"#) async throws -> (id: String, key: String) {
        let response = try await h.post("/v1/api-keys", json: body, headers: bearer(token))
        #expect(response.status == .created, "\(String(buffer: response.body))")
        let json = try h.json(response)
        return (try #require(json["id"]?.stringValue), try #require(json["key"]?.stringValue))
    }

    func chat(_ h: Harness, key: String, conversationID: String? = nil) async throws -> TestResponse {
        var body: [String: JSONValue] = ["model": .string("fake"), "messages": .array([.object(["role": .string("user"), "content": .string("hello")])])]
        if let conversationID { body["conversation_id"] = .string(conversationID) }
        return try await h.post("/v1/chat/completions", body: try JSONValue.object(body).encoded(), headers: bearer(key))
    }

    @Test("accounts are on by default: no credential, no access; probes stay open")
    func onByDefault() async throws {
        #expect(ChorusConfiguration().auth.enabled)
        try await withAccounts { h in
            let response = try await h.get("/v1/models")
            #expect(response.status == .unauthorized)
            let error = try h.json(response)["error"]
            #expect(error?["code"] == .string("missing_credentials"))
            #expect(error?["param"] == .null)
            #expect(response.headers[.wwwAuthenticate] != nil)
            #expect(try await h.get("/healthz").status == .ok)
            let wrong = try await h.get("/v1/models", headers: bearer("sk-chorus-not-a-key"))
            #expect(wrong.status == .unauthorized)
            #expect(try h.json(wrong)["error"]?["code"] == .string("invalid_api_key"))
        }
    }

    @Test("the first administrator logs in, makes a key, the key works until revoked, and only its hash is stored")
    func keys() async throws {
        try await withAccounts { h in
            let wrong = try await h.post("/v1/auth/login", json: #"{"email":"admin@localhost","password":"wrong password"}"#)
            #expect(wrong.status == .unauthorized)
            let token = try await login(h, "admin@localhost", Self.adminPassword)
            let (id, key) = try await createKey(h, token: token)
            #expect(key.hasPrefix("sk-chorus-"))
            #expect(try await chat(h, key: key).status == .ok)
            let me = try h.json(try await h.get("/v1/auth/me", headers: bearer(key)))
            #expect(me["auth"] == .string("api_key"))
            #expect(me["user"]?["role"] == .string("admin"))

            // Listing never shows the secret.
            let list = try h.json(try await h.get("/v1/api-keys", headers: bearer(token)))
            #expect(list["data"]?.arrayValue?.count == 1)
            #expect(list["data"]?.arrayValue?.first?["key"] == nil)

            let revoked = try await h.client.execute(uri: "/v1/api-keys/\(id)", method: .delete, headers: bearer(token))
            #expect(revoked.status == .ok)
            #expect(try h.json(revoked)["revoked_at"] != .null)
            #expect(try await chat(h, key: key).status == .unauthorized)

            let row = try #require(try await h.backend.database.raw("SELECT key_hash FROM api_keys WHERE id = \(bind: id)").first())
            #expect(try row.decode(column: "key_hash", as: String.self) == Secrets.hash(key))
            for table in ["api_keys", "sessions", "users"] {
                for row in try await h.backend.database.raw(SQLQueryString("SELECT * FROM \(unsafeRaw: table)")).all() {
                    for column in row.allColumns {
                        let text = (try? row.decode(column: column, as: String?.self)) ?? nil
                        #expect(text?.contains(key) != true && text?.contains(token) != true && text?.contains(Self.adminPassword) != true, "\(table).\(column)")
                    }
                }
            }
        }
    }

    @Test("another user's objects are 404, admin routes 403; admin:data sees everything")
    func ownership() async throws {
        try await withAccounts { h in
            let adminToken = try await login(h, "admin@localhost", Self.adminPassword)
            let created = try await h.post("/v1/admin/users", json: #"{"email":"bob@example.com","password":"bob password 1"}"#, headers: bearer(adminToken))
            #expect(created.status == .created)
            #expect(try h.json(created)["role"] == .string("user"))
            let bobKey = try await createKey(h, token: try await login(h, "bob@example.com", "bob password 1")).key
            let adminKey = try await createKey(h, token: adminToken).key

            let answer = try await chat(h, key: adminKey)
            let conversationID = try #require(answer.headers[.conversationID])
            #expect(try await h.get("/v1/conversations/\(conversationID)", headers: bearer(bobKey)).status == .notFound)
            #expect(try await chat(h, key: bobKey, conversationID: conversationID).status == .notFound)
            #expect(try await h.get("/v1/admin/users", headers: bearer(bobKey)).status == .forbidden)
            #expect(try await h.get("/v1/admin/audit", headers: bearer(bobKey)).status == .forbidden)
            #expect(try await h.get("/v1/admin/queues", headers: bearer(bobKey)).status == .forbidden)

            let bobsConversation = try #require(try await chat(h, key: bobKey).headers[.conversationID])
            #expect(try await h.get("/v1/conversations/\(bobsConversation)", headers: bearer(adminKey)).status == .ok)
            // Lists stay one's own.
            let adminList = try h.json(try await h.get("/v1/conversations", headers: bearer(adminKey)))
            #expect(adminList["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [conversationID])
        }
    }

    @Test("a key's scopes narrow its user's permissions and cannot widen them")
    func scopes() async throws {
        try await withAccounts { h in
            let token = try await login(h, "admin@localhost", Self.adminPassword)
            let narrow = try await createKey(h, token: token, body: #"{"name":"read","scopes":["conversations"]}"#).key
            #expect(try await h.get("/v1/conversations", headers: bearer(narrow)).status == .ok)
            let denied = try await chat(h, key: narrow)
            #expect(denied.status == .forbidden)
            #expect(try h.json(denied)["error"]?["code"] == .string("insufficient_permissions"))
            // That key may not mint a broader one.
            let escalate = try await h.post("/v1/api-keys", json: #"{"scopes":["chat"]}"#, headers: bearer(narrow))
            #expect(escalate.status == .forbidden)
            let unknown = try await h.post("/v1/api-keys", json: #"{"scopes":["root"]}"#, headers: bearer(token))
            #expect(unknown.status == .badRequest)
        }
    }

    @Test("cookie sessions: HttpOnly SameSite cookie, CSRF token required for changes, logout ends it")
    func cookies() async throws {
        try await withAccounts { h in
            let login = try await h.post("/v1/auth/login", json: #"{"email":"admin@localhost","password":"\#(Self.adminPassword)"}"#)
            #expect(login.status == .ok)
            let setCookie = try #require(login.headers[.setCookie])
            #expect(setCookie.contains("HttpOnly"))
            #expect(setCookie.contains("SameSite=Lax"))
            #expect(try h.json(login)["token"] == nil)
            let csrf = try #require(try h.json(login)["csrf_token"]?.stringValue)
            let cookie = try #require(setCookie.split(separator: ";").first.map(String.init))
            #expect(try await h.get("/v1/auth/me", headers: [.cookie: cookie]).status == .ok)
            let noToken = try await h.post("/v1/api-keys", json: "{}", headers: [.cookie: cookie])
            #expect(noToken.status == .forbidden)
            #expect(try h.json(noToken)["error"]?["code"] == .string("csrf_failed"))
            #expect(try await h.post("/v1/api-keys", json: "{}", headers: [.cookie: cookie, .csrfToken: "x" + csrf.dropFirst()]).status == .forbidden)
            #expect(try await h.post("/v1/api-keys", json: "{}", headers: [.cookie: cookie, .csrfToken: csrf]).status == .created)
            #expect(try await h.post("/v1/auth/logout", json: "", headers: [.cookie: cookie, .csrfToken: csrf]).status == .noContent)
            #expect(try await h.get("/v1/auth/me", headers: [.cookie: cookie]).status == .unauthorized)
        }
    }

    @Test("registration follows the policy: closed, open")
    func registration() async throws {
        try await withAccounts { h in
            let closed = try await h.post("/v1/auth/register", json: #"{"email":"eve@example.com","password":"eve password"}"#)
            #expect(closed.status == .forbidden)
            #expect(try h.json(closed)["error"]?["code"] == .string("registration_closed"))
        }
        try await withAccounts({ $0.auth.registration = .open }) { h in
            let short = try await h.post("/v1/auth/register", json: #"{"email":"eve@example.com","password":"short"}"#)
            #expect(short.status == .badRequest)
            let open = try await h.post("/v1/auth/register", json: #"{"email":"Eve@Example.com","password":"eve password"}"#)
            #expect(open.status == .created)
            #expect(try h.json(open)["email"] == .string("eve@example.com"))
            #expect(try h.json(open)["password_hash"] == nil)
            let again = try await h.post("/v1/auth/register", json: #"{"email":"eve@example.com","password":"eve password"}"#)
            #expect(again.status == .conflict)
            _ = try await login(h, "eve@example.com", "eve password")
        }
    }

    @Test("per-key request limits answer 429 with Retry-After; the audit log records it without secrets")
    func limitsAndAudit() async throws {
        try await withAccounts({ $0.limits.keyRequestsPerMinute = 3 }) { h in
            let token = try await login(h, "admin@localhost", Self.adminPassword)
            let key = try await createKey(h, token: token).key
            for _ in 0..<3 { #expect(try await h.get("/v1/models", headers: bearer(key)).status == .ok) }
            let limited = try await h.get("/v1/models", headers: bearer(key))
            #expect(limited.status == .tooManyRequests)
            #expect(Int(limited.headers[.retryAfter] ?? "") ?? 0 >= 1)
            #expect(try h.json(limited)["error"]?["code"] == .string("rate_limit_exceeded"))
            // The session is another credential of the same user: not limited by the key's counter.
            #expect(try await h.get("/v1/models", headers: bearer(token)).status == .ok)

            await h.security.audit.flush()
            let audit = try h.json(try await h.get("/v1/admin/audit?path_prefix=/v1/auth/login", headers: bearer(token)))
            let entry = try #require(audit["data"]?.arrayValue?.first)
            #expect(entry["method"] == .string("POST"))
            #expect(entry["status"] == .int(200))
            #expect(entry["params"]?["password"] == .string("[REDACTED]"))
            #expect(entry["params"]?["email"] == .string("admin@localhost"))
            let keys = try h.json(try await h.get("/v1/admin/audit?path_prefix=/v1/api-keys&limit=1", headers: bearer(token)))
            #expect(keys["data"]?.arrayValue?.first?["status"] == .int(201))
            let rows = try await h.backend.database.raw("SELECT params FROM audit_log").all()
            for row in rows {
                let params = try row.decode(column: "params", as: String.self)
                #expect(!params.contains(Self.adminPassword) && !params.contains(key) && !params.contains(token))
            }
        }
    }

    @Test("security headers on every answer; CORS only for listed origins")
    func hygiene() async throws {
        try await withAccounts({ $0.http.corsOrigins = ["https://app.example"] }) { h in
            let response = try await h.get("/healthz", headers: [.origin: "https://app.example"])
            #expect(response.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
            #expect(response.headers[HTTPField.Name("X-Frame-Options")!] == "DENY")
            #expect(response.headers[.accessControlAllowOrigin] == "https://app.example")
            let foreign = try await h.get("/healthz", headers: [.origin: "https://evil.example"])
            #expect(foreign.headers[.accessControlAllowOrigin] == nil)
            let preflight = try await h.client.execute(
                uri: "/v1/chat/completions", method: .options,
                headers: [.origin: "https://app.example", .accessControlRequestMethod: "POST", .accessControlRequestHeaders: "authorization, content-type"])
            #expect(preflight.status == .noContent)
            #expect(preflight.headers[.accessControlAllowHeaders] == "authorization, content-type")
            let refused = try await h.client.execute(uri: "/v1/chat/completions", method: .options, headers: [.origin: "https://evil.example", .accessControlRequestMethod: "POST"])
            #expect(refused.status == .forbidden)
        }
    }

    @Test("the access table: every spelling of a path meets the same rule, unknown paths need a sign-in")
    func accessPolicy() {
        let admin = AccessPolicy.Requirement.permission(.adminUsers)
        for path in ["/v1/admin/users", "/v1//admin/users/", "/V1/Admin/Users/x", "/v1/%61dmin/users", "v1/admin/users", "//v1/admin/users//", "/v1/admin/users/x/"] {
            #expect(AccessPolicy.requirement(method: .get, path: path) == admin, "\(path)")
        }
        #expect(AccessPolicy.requirement(method: .get, path: "/v1/admin/queues") == .permission(.adminOps))
        #expect(AccessPolicy.requirement(method: .get, path: "/v1/admin/audit") == .permission(.adminAudit))
        #expect(AccessPolicy.requirement(method: .get, path: "/healthz") == .anonymous)
        #expect(AccessPolicy.requirement(method: .post, path: "/healthz") == .signedIn)
        #expect(AccessPolicy.requirement(method: .post, path: "/v1/auth/login") == .anonymous)
        #expect(AccessPolicy.requirement(method: .get, path: "/v1/auth/me") == .signedIn)
        #expect(AccessPolicy.requirement(method: .get, path: "/v1/modelsx") == .signedIn)
        #expect(AccessPolicy.requirement(method: .get, path: "/v1/tasks/t1/ws") == .permission(.tasks))
        #expect(AccessPolicy.requirement(method: .get, path: "/somewhere") == .signedIn)
        #expect(AccessPolicy.requirement(method: .get, path: "/HEALTHZ") == .anonymous)
        #expect(AccessPolicy.requirement(method: .get, path: "/healthz/") == .anonymous)
        // The chat page and its files are public (the exact path `/` only); the API is not.
        #expect(AccessPolicy.requirement(method: .get, path: "/") == .anonymous)
        #expect(AccessPolicy.requirement(method: .get, path: "") == .anonymous)
        #expect(AccessPolicy.requirement(method: .get, path: "/web/js/app.js") == .anonymous)
        #expect(AccessPolicy.requirement(method: .post, path: "/") == .signedIn)
        #expect(AccessPolicy.requirement(method: .get, path: "/webx") == .signedIn)
        #expect(AccessPolicy.requirement(method: .get, path: "/v1/admin/ünïcode") == .permission(.adminOps))
    }
}

@Suite("Error bodies")
struct ErrorBodyTests {
    struct Boom: Error, CustomStringConvertible {
        var description: String { "SELECT * FROM users WHERE password_hash = 'secret' at Sources/ChorusStore/AuthStore.swift:42" }
    }

    @Test("an internal error answers 500 with a generic OpenAI body: no SQL, no paths, no stack")
    func internalErrorsSayNothingInside() async throws {
        let router = Router(context: ChorusRequestContext.self)
        router.middlewares.add(APIMiddleware())
        router.get("boom") { _, _ -> Response in throw Boom() }
        let app = Application(router: router)
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/boom", method: .get)
            #expect(response.status == .internalServerError)
            let body = String(buffer: response.body)
            #expect(!body.contains("SELECT") && !body.contains("Sources/") && !body.contains("secret"))
            let error = try JSONValue.parse(response.body.readableBytesView)["error"]
            #expect(error?["type"] == .string("server_error"))
            #expect(error?["code"] == .string("internal_error"))
            #expect(response.headers[.requestID] != nil)
        }
    }
}

extension AccountsTests {
    @Test("the last administrator cannot demote or disable itself away; a budget can be set at creation")
    func lastAdministrator() async throws {
        try await withAccounts { h in
            let token = try await login(h, "admin@localhost", Self.adminPassword)
            let me = try h.json(try await h.get("/v1/auth/me", headers: bearer(token)))
            let adminID = try #require(me["user"]?["id"]?.stringValue)
            let demote = try await h.client.execute(uri: "/v1/admin/users/\(adminID)", method: .patch, headers: bearer(token), body: ByteBuffer(string: #"{"role":"user"}"#))
            #expect(demote.status == .conflict)
            #expect(try h.json(demote)["error"]?["code"] == .string("last_administrator"))
            let created = try await h.post("/v1/admin/users", json: #"{"email":"second@example.com","password":"second admin","role":"admin","token_budget":500}"#, headers: bearer(token))
            #expect(created.status == .created)
            #expect(try h.json(created)["token_budget"] == .int(500))
            let invalid = try await h.post("/v1/admin/users", json: #"{"email":"third@example.com","password":"third user","token_budget":-1}"#, headers: bearer(token))
            #expect(invalid.status == .badRequest)
            #expect(try await h.security.accounts.store.user(email: "third@example.com") == nil, "nothing half-written")
            // With a second administrator, the first may step down.
            let demoted = try await h.client.execute(uri: "/v1/admin/users/\(adminID)", method: .patch, headers: bearer(token), body: ByteBuffer(string: #"{"role":"user"}"#))
            #expect(demoted.status == .ok)
        }
    }
}
