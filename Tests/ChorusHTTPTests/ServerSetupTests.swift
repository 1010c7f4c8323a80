import ChorusRuntime
import HTTPTypes
import HummingbirdTesting
import NIOCore
import NIOPosix
import Testing

/// The HTTP server as `chorus serve` sets it up (the tests run the real application).
@Suite struct ServerSetupTests {
    @Test func aConnectionThatSendsNothingIsClosedAfterTheIdleTimeout() async throws {
        try await Harness.run(configure: { $0.auth.enabled = false; $0.http.idleTimeoutSeconds = 1 }) { h in
            // A client that speaks in time is served as usual.
            #expect(try await h.get("/healthz").status == .ok)
            let port = try #require(h.client.port)
            let silent = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connect(host: "localhost", port: port).get()
            #expect(silent.isActive)
            #expect(try await eventually(within: .seconds(10)) { !silent.isActive }, "the server kept a silent connection open")
        }
    }
}
