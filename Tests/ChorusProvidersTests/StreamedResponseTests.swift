import AsyncHTTPClient
import ChorusCore
import FakeUpstreamKit
import Foundation
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import ChorusProviders

/// The upstream response read part by part (`StreamedResponse`), against the fake upstream.
@Suite struct StreamedResponseTests {
    /// While the reader is busy, the connection reads at most one part ahead of it; then every
    /// token still arrives, in order.
    @Test func theConnectionReadsAtMostOnePartAheadOfAReaderThatStalls() async throws {
        let fake = buildFakeUpstream(configuration: FakeUpstreamConfiguration(port: 0, logLevel: .warning), stats: FakeUpstreamStats())
        try await fake.test(.live) { fakeClient in
            let port = try #require(fakeClient.port)
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            var request = try HTTPClient.Request(url: "http://127.0.0.1:\(port)/v1/chat/completions", method: .POST)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .string(#"{"model":"fake-model","stream":true,"messages":[{"role":"user","content":"[[fake tokens=30 rate=200]]"}]}"#)
            let response = StreamedResponse()
            let task = client.execute(request: request, delegate: response)
            guard case .head(let head)? = try await response.next() else {
                Issue.record("no response head")
                return
            }
            #expect(head.status == .ok)
            // The tokens come 5 ms apart, each read on its own. The reader takes none until a part
            // waits (however slow the machine), and for 300 ms more: the rest stay unread.
            for _ in 0..<500 where response.waiting == 0 { try await Task.sleep(for: .milliseconds(10)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(response.waiting == 1, "\(response.waiting) parts wait")

            var parser = SSEParser()
            var decoder = StreamChunkDecoder()
            var tokens: [String] = []
            while case .body(let buffer)? = try await response.next() {
                for event in try parser.feed(buffer.readableBytesView) where event.data != "[DONE]" {
                    if let content = try decoder.decode(event.data).choices?.first?.delta?.content, !content.isEmpty {
                        tokens.append(content)
                    }
                }
            }
            try await task.futureResult.get()
            #expect(tokens == (0..<30).map { "t\($0) " }, "\(tokens)")
            try await client.shutdown()
        }
    }
}
