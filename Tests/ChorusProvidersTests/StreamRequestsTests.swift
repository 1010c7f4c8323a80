import AsyncHTTPClient
import ChorusCore
import Foundation
import NIOHTTP1
import Testing

@testable import ChorusProviders

/// The streamed request's parsed URL is kept per base URL, and made again when the base changes
/// (a local model restarted on another port).
@Suite struct StreamRequestsTests {
    @Test func theURLFollowsTheBase() throws {
        let requests = StreamRequests()
        let first = try requests.request(base: "http://127.0.0.1:8081/v1")
        #expect(first.url.absoluteString == "http://127.0.0.1:8081/v1/chat/completions")
        #expect(first.method == .POST && first.port == 8081 && first.headers.isEmpty && first.body == nil)
        #expect(try requests.request(base: "http://127.0.0.1:8081/v1").url == first.url)

        let moved = try requests.request(base: "http://127.0.0.1:9090/v1")
        #expect(moved.url.absoluteString == "http://127.0.0.1:9090/v1/chat/completions" && moved.port == 9090)
        #expect(try requests.request(base: "https://api.example.com/v1").useTLS)
    }

    @Test func anInvalidBaseIsAnUpstreamError() {
        let requests = StreamRequests()
        let error = #expect(throws: ChorusError.self) { try requests.request(base: "ftp://example.com/v1") }
        #expect(error?.message.contains("the upstream URL is not valid (ftp://example.com/v1/chat/completions)") == true)
    }
}
