import ChorusCore
import ChorusRuntime
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@testable import ChorusHTTP

/// A known path with a method it does not answer is 405 with `Allow` (found by schemathesis's
/// unsupported-method check: the router used to answer 404, as for an unknown path).
@Suite struct MethodNotAllowedTests {
    @Test func aKnownPathWithAnotherMethodIs405WithAllow() async throws {
        try await Harness.run(worker: false) { h in
            let put = try await h.client.execute(uri: "/v1/models", method: .put, headers: [:])
            #expect(put.status == .methodNotAllowed)
            #expect(put.headers[.allow] == "GET")
            let error = try h.json(put)["error"]
            #expect(error?["code"] == .string("method_not_allowed"))
            #expect(error?.objectValue?.keys.sorted() == ["code", "message", "param", "type"])
            #expect(put.headers[HTTPField.Name("X-Request-Id")!] != nil)

            let post = try await h.post("/v1/conversations/conv_1", json: "{}")
            #expect(post.status == .methodNotAllowed)
            #expect(post.headers[.allow] == "DELETE, GET, PATCH")
            // The catch-all of the page's files, and an anonymous route.
            #expect(try await h.client.execute(uri: "/web/js/app.js", method: .delete, headers: [:]).headers[.allow] == "GET")
            #expect(try await h.client.execute(uri: "/healthz", method: .post, headers: [:]).status == .methodNotAllowed)

            // An unknown path is still 404, and a handler's own 404 stays one.
            let unknown = try await h.get("/v1/nothing-here")
            #expect(unknown.status == .notFound && unknown.headers[.allow] == nil)
            #expect(try h.json(unknown)["error"]?["code"] == .string("unknown_url"))
            #expect(try await h.get("/v1/conversations/conv_1").status == .notFound)
            #expect(try await h.client.execute(uri: "/v1/models/fake/extra", method: .get, headers: [:]).status == .notFound)
        }
    }

    @Test func theCredentialComesFirstAndTheAuditLogRecordsThe405() async throws {
        let password = "correct horse battery"
        try await Harness.run(
            worker: false, environment: ["CHORUS_ADMIN_PASSWORD": password],
            configure: { $0.auth.enabled = true; $0.auth.bcryptCost = 4 }
        ) { h in
            #expect(try await h.client.execute(uri: "/v1/models", method: .put, headers: [:]).status == .unauthorized)
            let login = try await h.post("/v1/auth/login", json: #"{"email":"admin@localhost","password":"\#(password)","session":"bearer"}"#)
            let token = try #require(try h.json(login)["token"]?.stringValue)
            let bearer: HTTPFields = [.authorization: "Bearer \(token)"]
            let put = try await h.client.execute(uri: "/v1/models", method: .put, headers: bearer)
            #expect(put.status == .methodNotAllowed && put.headers[.allow] == "GET")
            await h.security.audit.flush()
            let audit = try h.json(try await h.get("/v1/admin/audit?path_prefix=/v1/models", headers: bearer))
            let statuses = audit["data"]?.arrayValue?.filter { $0["method"] == .string("PUT") }.compactMap { $0["status"]?.intValue }
            #expect(statuses == [405, 401])
        }
    }

    @Test func pathsMatchCapturesAndTheCatchAll() {
        let routes = RouteMethods()
        let router = Router(context: ChorusRequestContext.self)
        router.get("/v1/tasks/:id") { _, _ in "" }
        router.post("/v1/tasks/:id/cancel") { _, _ in "" }
        router.get("/web/**") { _, _ in "" }
        routes.set(router.routes)
        #expect(routes.allowed(path: "/v1/tasks/abc") == ["GET"])
        #expect(routes.allowed(path: "/v1/tasks/abc/cancel") == ["POST"])
        #expect(routes.allowed(path: "/v1/tasks") == [])
        #expect(routes.allowed(path: "/web/js/app.js") == ["GET"])
        #expect(routes.allowed(path: "/web") == [])
    }
}
