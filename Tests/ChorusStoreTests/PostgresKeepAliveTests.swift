import ChorusStore
import Logging
import SQLKit
import Testing

/// The pool's first connections stay open and Chorus pings them (the pool's own keep-alive and
/// idle timers are off for them: `PostgresBackend.init`), on a real server.
@Suite(.postgresServer, .timeLimit(.minutes(2)))
struct PostgresKeepAliveTests {
    private let logger = Logger(label: "test")

    private func withBackend(maximumConnections: Int, _ body: (PostgresBackend) async throws -> Void) async throws {
        try await PostgresTestServer.required().withFreshDatabase { configuration in
            var configuration = configuration
            configuration.maximumConnections = maximumConnections
            try await PostgresBackend.withRunning(configuration, logger: logger) { backend in try await body(backend) }
        }
    }

    /// The client backends of this test's database other than the one asking, with their last statement.
    private func otherSessions(_ backend: PostgresBackend) async throws -> [(pid: Int, query: String)] {
        try await backend.database.raw("""
            SELECT pid, query FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend' AND pid <> pg_backend_pid()
            """).all().map { (try $0.decode(column: "pid", as: Int.self), try $0.decode(column: "query", as: String.self)) }
    }

    /// Waits until the pool holds `count` connections to this database.
    private func waitForSessions(_ backend: PostgresBackend, count: Int) async throws {
        for _ in 0..<100 {
            if try await otherSessions(backend).count == count - 1 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the pool did not open \(count) connections; it has \(try await otherSessions(backend).count + 1)")
    }

    @Test func thePersistentConnectionsAreOpenedAndEachIsPinged() async throws {
        try await withBackend(maximumConnections: 6) { backend in
            // The ping leases its four connections together, so the pool opens four.
            try await backend.pingPersistentConnections()
            try await waitForSessions(backend, count: PostgresBackend.Configuration.defaultPersistentConnections)
            // All four answered `SELECT 1`: the three not running this query show it as their last.
            let sessions = try await otherSessions(backend)
            #expect(sessions.count == 3)
            #expect(sessions.allSatisfy { $0.query == "SELECT 1" }, "\(sessions)")
        }
    }

    /// A connection whose path stops passing bytes (through a relay that freezes it) makes the
    /// ping fail at its deadline instead of hanging; the pool then opens a new connection.
    @Test func aPingClosesAConnectionThatStopsAnsweringAndThePoolOpensAnother() async throws {
        try await PostgresTestServer.required().withFreshDatabase { configuration in
            let relay = try await TCPRelay.start(to: configuration.host, port: configuration.port)
            var configuration = configuration
            configuration.port = relay.port
            configuration.maximumConnections = 1
            do {
                try await PostgresBackend.withRunning(configuration, logger: logger) { backend in
                    let before = try await backend.database.raw("SELECT pg_backend_pid() AS pid").first()!.decode(column: "pid", as: Int.self)
                    relay.freeze()
                    await #expect(throws: (any Error).self) { try await backend.pingPersistentConnections(timeout: .milliseconds(500)) }
                    let after = try await backend.database.raw("SELECT pg_backend_pid() AS pid").first()!.decode(column: "pid", as: Int.self)
                    #expect(after != before)
                }
            } catch {
                await relay.close()
                throw error
            }
            await relay.close()
        }
    }
}
