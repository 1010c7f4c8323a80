import ChorusRuntime
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import ChorusHTTP

/// The chat page is served by the binary itself, to anyone, with a strict CSP and cache validators.
@Suite struct WebPageTests {
    @Test func thePageIsServedWithoutCredentialsAndRevalidates() async throws {
        try await Harness.run(configure: { $0.auth.enabled = true; $0.auth.bcryptCost = 4 }) { h in
            let page = try await h.get("/")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            #expect(String(buffer: page.body).contains(#"<script type="module" src="/web/js/app.js">"#))
            let csp = try #require(page.headers[.contentSecurityPolicy])
            #expect(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"))
            let etag = try #require(page.headers[.eTag])
            #expect(try await h.get("/", headers: [.ifNoneMatch: etag]).status == .notModified)
            #expect(try await h.get("/web/js/app.js").headers[.contentType] == "text/javascript; charset=utf-8")
            #expect(try await h.get("/web/no-such-file.js").status == .notFound)
            // The API next to it still needs a credential.
            #expect(try await h.get("/v1/models").status == .unauthorized)
        }
    }

    @Test func everyFileHasAGzipCopyWhenThatIsSmaller() throws {
        let assets = WebAssets.shared
        #expect(assets.files["index.html"] != nil && assets.files["js/app.js"] != nil)
        for (path, file) in assets.files {
            if let gzip = file.gzip { #expect(gzip.readableBytes < file.body.readableBytes, "\(path)") }
        }
        #expect(WebController.acceptsGzip("gzip, deflate, br") && !WebController.acceptsGzip("gzip;q=0") && !WebController.acceptsGzip(nil))
    }
}
