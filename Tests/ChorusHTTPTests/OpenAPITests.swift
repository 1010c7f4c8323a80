import ChorusCore
import ChorusRuntime
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@testable import ChorusApp
@testable import ChorusHTTP

/// The OpenAPI document describes exactly the routes Chorus serves, and is served with the page
/// that renders it.
@Suite struct OpenAPITests {
    static let methods: Set<String> = ["get", "put", "post", "delete", "options", "head", "patch", "trace"]

    /// "METHOD /path" for every operation of the document. A trailing `/` (SkillSpace's paths are
    /// written as its clients call them) is dropped, as Hummingbird's route paths drop it.
    static func documentedOperations() throws -> Set<String> {
        let document = try JSONValue.parse(OpenAPIDocument.shared.json)
        let paths = try #require(document["paths"]?.objectValue)
        var operations = Set<String>()
        for (written, item) in paths {
            let path = written.count > 1 && written.hasSuffix("/") ? String(written.dropLast()) : written
            for method in (item.objectValue ?? [:]).keys where methods.contains(method) {
                operations.insert("\(method.uppercased()) \(path)")
            }
        }
        return operations
    }

    /// "METHOD /path" for every route of the router, in the document's spelling: Hummingbird's
    /// `{id}` captures are OpenAPI's already; the catch-all `**` of `/web/**` is `{path}`.
    static func routedOperations(_ assembly: ChorusAssembly) -> Set<String> {
        Set(assembly.router().routes.map { route in
            let path = route.path.description.replacingOccurrences(of: "**", with: "{path}")
            return "\(route.method.rawValue) \(path)"
        })
    }

    @Test(arguments: [true, false])
    func everyRouteIsDocumentedAndEveryDocumentedPathIsRouted(accounts: Bool) async throws {
        let documented = try Self.documentedOperations()
        try await Harness.run(worker: false, configure: { $0.auth.enabled = accounts }) { h in
            let routed = Self.routedOperations(h.assembly)
            #expect(routed.count > 20, "the router lists its routes")
            let undocumented = routed.subtracting(documented).sorted()
            #expect(undocumented.isEmpty, "routes missing from Sources/ChorusHTTP/OpenAPI/openapi.yaml: \(undocumented)")
            // With accounts on, every route exists; with them off, a few account routes are left out.
            let notRouted = documented.subtracting(routed).sorted()
            if accounts {
                #expect(notRouted.isEmpty, "documented but not routed: \(notRouted)")
            } else {
                #expect(notRouted.allSatisfy { $0.contains("/v1/auth/") || $0.contains("/v1/api-keys") || $0.contains("/v1/admin/") }, "\(notRouted)")
            }
        }
    }

    @Test func theDocumentIsOpenAPI31WithAnOperationIdForEachOperation() throws {
        let document = try JSONValue.parse(OpenAPIDocument.shared.json)
        #expect(document["openapi"]?.stringValue == "3.1.0")
        var ids = Set<String>()
        for (_, item) in try #require(document["paths"]?.objectValue) {
            for (method, operation) in item.objectValue ?? [:] where Self.methods.contains(method) {
                let id = try #require(operation["operationId"]?.stringValue)
                #expect(ids.insert(id).inserted, "operationId \(id) is used twice")
                #expect(operation["responses"]?.objectValue?.isEmpty == false, "\(id) lists its responses")
            }
        }
        // Keys keep the file's order (the page lists operations as the file does).
        let text = String(decoding: OpenAPIDocument.shared.json, as: UTF8.self)
        let chat = try #require(text.range(of: "\"/v1/chat/completions\""))
        let docs = try #require(text.range(of: "\"/openapi.json\""))
        #expect(chat.lowerBound < docs.lowerBound)
    }

    @Test func yamlScalarsBecomeTheirJSONTypes() throws {
        let document = try OpenAPIDocument(yaml: """
            a: 1
            b: 1.5
            c: true
            d: null
            e: "1"
            '200': {f: [x, 'null']}
            """)
        #expect(String(decoding: document.json, as: UTF8.self) == #"{"a":1,"b":1.5,"c":true,"d":null,"e":"1","200":{"f":["x","null"]}}"#)
    }

    @Test func theDocumentAndItsPageAreServedWithoutCredentials() async throws {
        try await Harness.run(worker: false, configure: { $0.auth.enabled = true; $0.auth.bcryptCost = 4 }) { h in
            let document = try await h.get("/openapi.json")
            #expect(document.status == .ok)
            #expect(document.headers[.contentType] == "application/json")
            #expect(try JSONValue.parse(document.body.readableBytesView)["openapi"]?.stringValue == "3.1.0")
            let etag = try #require(document.headers[.eTag])
            #expect(try await h.get("/openapi.json", headers: [.ifNoneMatch: etag]).status == .notModified)

            let page = try await h.get("/docs")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            let html = String(buffer: page.body)
            #expect(html.contains(#"<script type="module" src="/web/js/docs.js">"#))
            #expect(!html.contains("<script>") && !html.contains("http://") && !html.contains("https://"), "no inline script, nothing from elsewhere")
            let csp = try #require(page.headers[.contentSecurityPolicy])
            #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe"))
            #expect(try await h.get("/web/js/docs.js").status == .ok)
            #expect(try await h.get("/web/docs.css").status == .ok)
        }
    }
}
