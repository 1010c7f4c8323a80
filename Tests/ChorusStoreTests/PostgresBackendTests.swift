import ChorusStore
import Logging
import SQLKit
import Synchronization
import Testing

/// What needs no server: reading connection URLs, and closing a backend that never ran.
@Suite struct PostgresBackendTests {
    @Test func aURLGivesEveryField() throws {
        let configuration = try PostgresBackend.Configuration(url: "postgres://chorus:p%40ss@db.internal:6543/chorus_prod?sslmode=disable", maximumConnections: 7)
        #expect(configuration.host == "db.internal")
        #expect(configuration.port == 6543)
        #expect(configuration.username == "chorus")
        #expect(configuration.password == "p@ss")
        #expect(configuration.database == "chorus_prod")
        #expect(configuration.tls == .disable)
        #expect(configuration.maximumConnections == 7)
        #expect(configuration.description == "postgres://chorus:***@db.internal:6543/chorus_prod?sslmode=disable")
    }

    @Test func aURLHasDefaults() throws {
        let configuration = try PostgresBackend.Configuration(url: "postgresql://chorus@localhost")
        #expect(configuration.port == 5432)
        #expect(configuration.password == nil)
        #expect(configuration.database == nil)
        #expect(configuration.tls == .prefer)
        #expect(configuration.maximumConnections == PostgresBackend.Configuration.defaultMaximumConnections)
        #expect(try PostgresBackend.Configuration(url: "postgres://u@h/d?sslmode=verify-full").tls == .require)
    }

    @Test(arguments: ["http://u@h/d", "postgres://h:5432/d", "postgres://u@/d", "postgres://u@h/d?sslmode=sometimes", "not a url"])
    func aBadURLIsRefusedWithoutItsPassword(_ url: String) {
        #expect(throws: PostgresBackend.Configuration.InvalidURL.self) { try PostgresBackend.Configuration(url: url) }
    }

    @Test func closingABackendThatNeverRanReturnsAndAlaterRunEndsAtOnce() async throws {
        let backend = try PostgresBackend(url: "postgres://u:p@127.0.0.1:1/d?sslmode=disable", logger: Logger(label: "test"))
        await backend.close()
        try await withTimeout(seconds: 10, "run after close") { await backend.run() }
    }
}

/// Starting on a real server.
@Suite(.postgresServer, .timeLimit(.minutes(1)))
struct PostgresStartTests {
    final class Warnings: Sendable {
        let messages = Mutex<[String]>([])
    }

    /// Keeps the messages logged at warning or above.
    struct Collector: LogHandler {
        let warnings: Warnings
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            if event.level >= .warning { warnings.messages.withLock { $0.append("\(event.message)") } }
        }
    }

    /// A statement issued as the backend's `run()` is started (as every `chorus gateway`, `worker`
    /// and CLI command on PostgreSQL does) waits for it, without PostgresNIO's warning that a
    /// connection was asked for before `run()`.
    @Test func aStatementIssuedAsTheBackendStartsWaitsForItWithoutAWarning() async throws {
        let warnings = Warnings()
        let logger = Logger(label: "test") { _ in Collector(warnings: warnings) }
        try await PostgresTestServer.required().withFreshDatabase { configuration in
            let backend = PostgresBackend(configuration: configuration, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await backend.run() }
                let one = try await backend.database.raw("SELECT 1 AS one").first()?.decode(column: "one", as: Int.self)
                #expect(one == 1)
                await backend.close()
            }
        }
        #expect(warnings.messages.withLock { $0 } == [])
    }
}
