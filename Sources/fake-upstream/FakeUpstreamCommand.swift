import ArgumentParser
import FakeUpstreamKit
import Foundation
import Hummingbird

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A deterministic OpenAI-compatible upstream with fault injection, for tests and benchmarks.
@main
struct FakeUpstreamCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fake-upstream",
        abstract: "A deterministic OpenAI-compatible upstream with fault injection."
    )

    @Option(help: "Address to bind.")
    var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free port.")
    var port = 0

    @Option(help: "Answer tokens when a request does not say tokens=N.")
    var tokens = 8

    @Option(help: "Tokens per second when a request does not say rate=R; 0 means no delay.")
    var rate = 0.0

    @Option(help: "Model name reported by /v1/models and used when a request names none.")
    var model = "fake-model"

    @Option(help: "API key the Gemini routes require in x-goog-api-key (default: the FAKE_UPSTREAM_API_KEY environment variable; none: no key needed).")
    var apiKey: String?

    func run() async throws {
        let host = self.host
        let app = buildFakeUpstream(
            configuration: FakeUpstreamConfiguration(
                host: host,
                port: self.port,
                defaultTokenCount: self.tokens,
                defaultTokensPerSecond: self.rate,
                defaultModel: self.model,
                apiKey: self.apiKey ?? ProcessInfo.processInfo.environment["FAKE_UPSTREAM_API_KEY"]
            ),
            onServerRunning: { port in
                writeLineToStandardOutput("fake-upstream listening on http://\(host):\(port)")
            }
        )
        try await app.runService()
    }
}

/// Writes straight to file descriptor 1, so the line is out before anyone reads it (no stdio buffering).
private func writeLineToStandardOutput(_ line: String) {
    var bytes = Array((line + "\n").utf8)[...]
    while !bytes.isEmpty {
        let written = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        guard written > 0 else { return }
        bytes = bytes.dropFirst(written)
    }
}
