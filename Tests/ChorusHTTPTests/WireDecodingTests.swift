import ChorusCore
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ChorusHTTP

/// Request bodies decoded through `ChorusRequestContext`: a `DecodingError` becomes an
/// OpenAI-shaped 400 whose `param` is the path of the field.
@Suite struct WireDecodingTests {
    struct Probe: Decodable {
        struct Limits: Decodable {
            var count: Int
        }

        var name: String
        var limits: Limits
        var tags: [String]?
    }

    func decodingError(_ json: String) throws -> ChorusError {
        do {
            _ = try ChorusRequestDecoder().decode(Probe.self, from: Array(json.utf8))
        } catch let error as ChorusError {
            return error
        }
        Issue.record("\(json) decoded")
        return .internalError("decoded")
    }

    @Test func aMissingFieldIsNamed() throws {
        #expect(try decodingError(#"{"limits":{"count":1}}"#)
            == .invalidRequest(message: "Missing required parameter: 'name'.", param: "name", code: "missing_required_parameter"))
        #expect(try decodingError(#"{"name":null,"limits":{"count":1}}"#).param == "name")
        let nested = try decodingError(#"{"name":"n","limits":{}}"#)
        #expect(nested.param == "limits.count" && nested.code == "missing_required_parameter")
    }

    @Test func aWronglyTypedNestedFieldIsNamed() throws {
        #expect(try decodingError(#"{"name":"n","limits":{"count":"three"}}"#)
            == .invalidRequest(message: "'limits.count' must be an integer.", param: "limits.count", code: "invalid_type"))
        let item = try decodingError(#"{"name":"n","limits":{"count":3},"tags":["a",2]}"#)
        #expect(item.param == "tags[1]" && item.code == "invalid_type")
        #expect(try decodingError(#"{"name":"n","limits":[]}"#).param == "limits")
    }

    @Test func aBodyThatIsNoObjectOrNoJSONIsRefusedAsBefore() throws {
        #expect(try decodingError("[1]") == .invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type"))
        #expect(try decodingError("null").code == "invalid_type")
        // The strict parser of every route: no trailing commas, an empty body is no JSON.
        #expect(try decodingError(#"{"name":"n",}"#).code == "invalid_json")
        #expect(try decodingError("").code == "invalid_json")
    }

    @Test func ofAKeyGivenTwiceTheLastCounts() throws {
        let probe = try ChorusRequestDecoder().decode(Probe.self, from: Array(#"{"name":"first","name":"last","limits":{"count":1}}"#.utf8))
        #expect(probe.name == "last")
    }

    @Test("through the routes: status 400 and the field in `param`; 413 over the body limit")
    func throughTheRoutes() async throws {
        try await Harness.run(environment: ["CHORUS_ADMIN_PASSWORD": AccountsTests.adminPassword], configure: { _ in }) { h in
            let login = try await h.post("/v1/auth/login", json: #"{"email":"admin@localhost","password":"\#(AccountsTests.adminPassword)","session":"bearer"}"#)
            let token = try #require(try h.json(login)["token"]?.stringValue)
            let admin: HTTPFields = [.authorization: "Bearer \(token)"]
            func error(_ response: TestResponse, _ status: HTTPResponse.Status) throws -> JSONValue? {
                #expect(response.status == status, "\(String(buffer: response.body))")
                return try h.json(response)["error"]
            }

            let missing = try error(try await h.post("/v1/admin/roles", json: #"{"name":"reader"}"#, headers: admin), .badRequest)
            #expect(missing?["param"] == .string("permissions") && missing?["code"] == .string("missing_required_parameter"))
            let wrongType = try error(try await h.post("/v1/api-keys", json: #"{"name":5}"#, headers: admin), .badRequest)
            #expect(wrongType?["param"] == .string("name") && wrongType?["code"] == .string("invalid_type"))
            let scopes = try error(try await h.post("/v1/api-keys", json: #"{"scopes":["chat",3]}"#, headers: admin), .badRequest)
            #expect(scopes?["param"] == .string("scopes") && scopes?["code"] == .string("invalid_type"))
            let budget = try error(try await h.post("/v1/api-keys", json: #"{"token_budget":"5"}"#, headers: admin), .badRequest)
            #expect(budget?["param"] == .string("token_budget") && budget?["code"] == .string("invalid_value"))
            let session = try error(try await h.post("/v1/auth/login", json: #"{"session":"jwt"}"#), .badRequest)
            #expect(session?["param"] == .string("session") && session?["code"] == .string("invalid_value"))
            let notObject = try error(try await h.post("/v1/api-keys", json: "[]", headers: admin), .badRequest)
            #expect(notObject?["param"] == .null && notObject?["code"] == .string("invalid_type"))
            // An empty body reads as `{}` on the accounts routes.
            #expect(try await h.post("/v1/api-keys", json: "", headers: admin).status == .created)

            let me = try h.json(try await h.get("/v1/auth/me", headers: admin))
            let adminID = try #require(me["user"]?["id"]?.stringValue)
            let disabled = try await h.client.execute(uri: "/v1/admin/users/\(adminID)", method: .patch, headers: admin, body: ByteBuffer(string: #"{"disabled":"yes"}"#))
            #expect(try error(disabled, .badRequest)?["param"] == .string("disabled"))

            let conversation = try #require(try await h.post("/v1/chat/completions", json: #"{"model":"fake","messages":[{"role":"user","content":"hi"}]}"#, headers: admin).headers[.conversationID])
            func rename(_ body: String) async throws -> TestResponse {
                try await h.client.execute(uri: "/v1/conversations/\(conversation)", method: .patch, headers: admin, body: ByteBuffer(string: body))
            }
            #expect(try error(try await rename("{}"), .badRequest)?["param"] == .string("title"))
            #expect(try error(try await rename(#"{"title":["x"]}"#), .badRequest)?["code"] == .string("invalid_type"))
            #expect(try error(try await rename(""), .badRequest)?["code"] == .string("invalid_json"))
            let renamed = try h.json(try await rename(#"{"title":null}"#))
            #expect(renamed["title"] == .null && renamed["model"] == .string("fake"))

            let big = #"{"name":"\#(String(repeating: "x", count: 70_000))"}"#
            #expect(try error(try await h.post("/v1/api-keys", json: big, headers: admin), .contentTooLarge)?["code"] == .string("payload_too_large"))
        }
    }

    @Test("objects keep their null fields and leave out the absent ones")
    func nullAndAbsent() async throws {
        try await Harness.run(environment: ["CHORUS_ADMIN_PASSWORD": AccountsTests.adminPassword], configure: { _ in }) { h in
            let login = try await h.post("/v1/auth/login", json: #"{"email":"admin@localhost","password":"\#(AccountsTests.adminPassword)","session":"bearer"}"#)
            #expect(login.headers[.cacheControl] == "no-store" && login.headers[.contentType] == "application/json")
            let session = try h.json(login)
            #expect(session["csrf_token"] == nil && session["user"]?["token_budget"] == .null)
            let admin: HTTPFields = [.authorization: "Bearer \(try #require(session["token"]?.stringValue))"]
            let created = try await h.post("/v1/api-keys", json: "{}", headers: admin)
            #expect(created.status == .created && created.headers[.cacheControl] == "no-store")
            let key = try h.json(created)
            for name in ["scopes", "expires_at", "last_used_at", "revoked_at", "token_budget"] {
                #expect(key[name] == .null, "\(name)")
            }
            #expect(key["name"] == .string("key") && key["key"]?.stringValue?.hasPrefix("sk-chorus-") == true)
            let listed = try h.json(try await h.get("/v1/api-keys", headers: admin))
            #expect(listed["has_more"] == nil && listed["data"]?.arrayValue?.first?["key"] == nil)
            let users = try h.json(try await h.get("/v1/admin/users", headers: admin))
            #expect(users["has_more"] == .bool(false))
            let me = try h.json(try await h.get("/v1/auth/me", headers: admin))
            #expect(me["api_key_id"] == nil && me["csrf_token"] == nil && me["auth"] == .string("session"))
            let conversations = try h.json(try await h.get("/v1/conversations", headers: admin))
            #expect(conversations["next_before"] == .null && conversations["has_more"] == .bool(false))
        }
    }
}
