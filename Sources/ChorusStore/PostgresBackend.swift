import ChorusCore
import Foundation
public import Logging
import PostgresKit
import PostgresNIO
public import SQLKit
public import ServiceLifecycle
import Synchronization

/// PostgreSQL through PostgresNIO's `PostgresClient`: a bounded pool of connections.
///
/// The backend is a `Service`: its `run()` runs the pool, and no statement is served until it runs
/// (statements issued earlier wait for it). `run()` ends when its task is cancelled, on graceful
/// shutdown, or on `close()`; after that every statement fails.
///
/// Reads through `database` lease a connection for each statement. `transaction` leases ONE
/// connection for BEGIN, the body's statements and COMMIT (or ROLLBACK), so transactions on
/// different tasks never share a connection. Statements that recur run as prepared statements
/// (`PostgresStatements`).
public final class PostgresBackend: SQLBackend, Service {
    public let database: any SQLDatabase
    private let client: PostgresPool
    private let statements: PostgresStatements
    private let logger: Logger
    private let writes = Atomic<Int>(0)
    private let started = Atomic<Bool>(false)
    /// Finished by `close()`; `run()` waits on it beside the client.
    private let closeRequests: AsyncStream<Void>
    private let requestClose: AsyncStream<Void>.Continuation
    /// Set when `run()` has returned.
    private let stopped = OneShot<Void>()

    /// The connections `keepAlive()` leases and pings together (`Configuration.persistentConnections`,
    /// or fewer when fewer are allowed).
    private let persistent: Int
    private let maximumConnections: Int

    public var committedWrites: Int { writes.load(ordering: .relaxed) }

    public var pools: [PoolUsage] { [client.gauge.usage(pool: "postgres", maximum: maximumConnections)] }

    /// Connects with `postgres://user:password@host:port/database?sslmode=disable|prefer|require`.
    public convenience init(url: String, maximumConnections: Int = Configuration.defaultMaximumConnections, logger: Logger) throws {
        self.init(configuration: try Configuration(url: url, maximumConnections: maximumConnections), logger: logger)
    }

    public init(configuration: Configuration, logger: Logger) {
        var clientConfiguration = PostgresClient.Configuration(
            host: configuration.host, port: configuration.port, username: configuration.username,
            password: configuration.password, database: configuration.database, tls: configuration.tls.client)
        clientConfiguration.options.maximumConnections = configuration.maximumConnections
        // PostgresNIO's pool starts a keep-alive timer and, for a connection above its minimum, an
        // idle timer each time a connection goes back to it, and cancels them at the next lease:
        // every timer is a task group with two tasks and a Dispatch timer. The pool's keep-alive
        // is off, and `keepAlive()` leases `persistent` connections every 30 s and pings them,
        // which also keeps them from closing idle (60 s).
        // The pool's minimum stays 0: PostgresNIO 1.33.2 traps (a precondition in
        // `createNewDemandConnectionIfPossible`) when a statement needs a connection while the pool
        // is below a non-zero minimum, which happens while the server restarts; a worker crashed
        // that way in the PostgreSQL restart end-to-end test.
        let persistent = min(configuration.persistentConnections, configuration.maximumConnections)
        clientConfiguration.options.minimumConnections = 0
        clientConfiguration.options.keepAliveBehavior = nil
        let client = PostgresPool(client: PostgresClient(configuration: clientConfiguration, backgroundLogger: logger))
        let statements = PostgresStatements(capacity: configuration.preparedStatements)
        self.client = client
        self.maximumConnections = configuration.maximumConnections
        self.persistent = persistent
        self.statements = statements
        self.logger = logger
        self.database = PostgresPoolDatabase(client: client, statements: statements, logger: logger)
        let (closeRequests, requestClose) = AsyncStream.makeStream(of: Void.self)
        self.closeRequests = closeRequests
        self.requestClose = requestClose
    }

    /// Runs the pool until the task is cancelled, graceful shutdown, or `close()`. Call it once.
    public func run() async {
        started.store(true, ordering: .releasing)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.client.run() }
            group.addTask { for await _ in self.closeRequests {} }
            group.addTask { await self.keepAlive() }
            await group.next()
            group.cancelAll()
        }
        stopped.set(())
    }

    /// Pings the persistent connections every `keepAliveInterval`, so that an idle one is neither
    /// dropped by a firewall or load balancer that forgets quiet connections, nor found dead by
    /// the next request.
    private func keepAlive() async {
        while true {
            do { try await Task.sleep(for: Self.keepAliveInterval) } catch { return }
            do {
                try await pingPersistentConnections()
            } catch is CancellationError {
                return
            } catch {
                // A connection that timed out is closed already; the next lease opens another.
                logger.warning("PostgreSQL keep-alive ping failed", metadata: ["error": "\(error)"])
            }
        }
    }

    static let keepAliveInterval: Duration = .seconds(30)

    /// Leases the persistent connections together (each stays leased while the next is taken, so
    /// they are distinct) and runs `SELECT 1` on each. A connection that does not answer within
    /// `timeout` is closed, which fails its query (and this call); the next lease opens a new one.
    public func pingPersistentConnections(timeout: Duration = .seconds(10)) async throws {
        try await ping(remaining: persistent, timeout: TimeAmount(timeout))
    }

    private func ping(remaining: Int, timeout: TimeAmount) async throws {
        guard remaining > 0 else { return }
        try await client.withConnection { connection in
            let deadline = connection.eventLoop.scheduleTask(in: timeout) { connection.close().whenComplete { _ in } }
            do {
                _ = try await connection.query("SELECT 1", logger: logger).get()
                deadline.cancel()
            } catch {
                deadline.cancel()
                // Give the connection back only once it is closed, so the pool knows it is gone
                // and the next statement gets another one.
                try? await connection.close()
                throw error
            }
            try await ping(remaining: remaining - 1, timeout: timeout)
        }
    }

    /// Stops the pool and waits until `run()` has returned (at once if it never started).
    public func close() async {
        requestClose.finish()
        if started.load(ordering: .acquiring) {
            await stopped.value()
        }
    }

    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await client.withConnection { connection in
            let db = PostgresConnectionDatabase(connection: connection, statements: statements, logger: logger)
            try await db.raw("BEGIN").run()
            let result: T
            do {
                result = try await body(db)
            } catch {
                do {
                    try await db.raw("ROLLBACK").run()
                } catch {
                    // The connection's state is unknown: close it, and the pool replaces it.
                    try? await connection.close()
                }
                throw error
            }
            try await db.raw("COMMIT").run()
            writes.add(1, ordering: .relaxed)
            return result
        }
    }

    public func write(_ statement: SQLQueryString) async throws {
        _ = try await writeReturning(statement)
    }

    public func writeReturning(_ statement: SQLQueryString) async throws -> [any SQLRow] {
        let rows = try await client.withConnection { connection in
            try await PostgresConnectionDatabase(connection: connection, statements: statements, logger: logger).raw(statement).all()
        }
        writes.add(1, ordering: .relaxed)
        return rows
    }
}

extension PostgresBackend {
    /// Where and how to connect. The password is never part of `description`.
    public struct Configuration: Sendable, CustomStringConvertible {
        public enum TLSMode: String, Sendable {
            /// Plain TCP.
            case disable
            /// TLS with certificate verification when the server offers it, plain TCP otherwise.
            case prefer
            /// TLS with certificate verification, or no connection.
            case require
        }

        public static let defaultMaximumConnections = 20
        /// Connections leased and pinged together by Chorus every 30 s (see `PostgresBackend.init`).
        public static let defaultPersistentConnections = 4
        public static let defaultPreparedStatements = 256

        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        /// Nil connects to the database named after the user.
        public var database: String?
        public var tls: TLSMode
        /// The pool never holds more connections than this; further requests wait for one.
        public var maximumConnections: Int
        /// How many recurring statements run as prepared statements (`PostgresStatements`); 0
        /// runs all unnamed.
        public var preparedStatements = Configuration.defaultPreparedStatements
        /// How many connections Chorus leases together and pings every 30 s (at most
        /// `maximumConnections`), which keeps them open; others close after 60 s idle.
        public var persistentConnections = Configuration.defaultPersistentConnections

        public init(
            host: String, port: Int = 5432, username: String, password: String?, database: String?,
            tls: TLSMode = .prefer, maximumConnections: Int = Self.defaultMaximumConnections
        ) {
            self.host = host
            self.port = port
            self.username = username
            self.password = password
            self.database = database
            self.tls = tls
            self.maximumConnections = maximumConnections
        }

        /// Parses `postgres://user:password@host:port/database` (or `postgresql://`). User and host
        /// are required; the port defaults to 5432. `sslmode` (or `tlsmode`) may be `disable`,
        /// `prefer` (the default) or `require`; libpq's `allow`, `verify-ca` and `verify-full` are
        /// read as `prefer`, `require` and `require`.
        public init(url: String, maximumConnections: Int = Self.defaultMaximumConnections) throws {
            guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme) else {
                throw InvalidURL(reason: "expected postgres://user:password@host:port/database")
            }
            guard let username = components.user, !username.isEmpty else {
                throw InvalidURL(reason: "the URL names no user")
            }
            guard let host = components.host, !host.isEmpty else {
                throw InvalidURL(reason: "the URL names no host")
            }
            let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
            var tls = TLSMode.prefer
            if let mode = components.queryItems?.last(where: { ["sslmode", "tlsmode"].contains($0.name.lowercased()) })?.value {
                switch mode.lowercased() {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw InvalidURL(reason: "unknown sslmode '\(mode)'")
                }
            }
            self.init(
                host: host, port: components.port ?? 5432, username: username, password: components.password,
                database: path.isEmpty ? nil : path, tls: tls, maximumConnections: maximumConnections)
        }

        public var description: String {
            "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database ?? "")?sslmode=\(tls.rawValue)"
        }

        /// A PostgreSQL URL that could not be read. Never carries the password.
        public struct InvalidURL: Error, CustomStringConvertible {
            public let reason: String
            public var description: String { "invalid PostgreSQL URL: \(reason)" }
        }
    }
}

extension PostgresBackend.Configuration.TLSMode {
    var client: PostgresClient.Configuration.TLS {
        switch self {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
    }
}

/// The `PostgresClient`, whose statements wait until its `run()` has begun. PostgresNIO lets a
/// lease wait for `run()` too, but warns about it ("`PostgresClient.run()` hasn't been called
/// yet"), and every `chorus gateway`, `worker` and CLI command on PostgreSQL starts with a
/// statement that races the service's start, so users saw the warning at start.
private struct PostgresPool: Sendable {
    let client: PostgresClient
    /// Statements in the pool and connections leased (PostgresNIO's own pool figures are not public).
    let gauge = PoolGauge()
    private let running = OneShot<Void>()

    init(client: PostgresClient) {
        self.client = client
    }

    /// Runs the client (once); statements waiting for it go ahead as it begins.
    func run() async {
        running.set(())
        await client.run()
    }

    func withConnection<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> sending Result {
        gauge.enter()
        defer { gauge.leave() }
        await running.value()
        return try await client.withConnection(isolation: isolation) { connection in
            gauge.acquire()
            defer { gauge.release() }
            return try await body(connection)
        }
    }
}

/// `SQLDatabase` over the pool, for statements outside a transaction: each statement leases a
/// connection for as long as it runs (rows included) and gives it back.
private struct PostgresPoolDatabase: SQLDatabase {
    let client: PostgresPool
    let statements: PostgresStatements
    let logger: Logger

    var eventLoop: any EventLoop { PostgresClient.defaultEventLoopGroup.any() }
    var dialect: any SQLDialect { PostgresDialect() }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        eventLoop.makeFutureWithTask { try await self.execute(sql: query, onRow) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await client.withConnection { connection in
            try await statements.run(query, on: connection, logger: logger, onRow)
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await client.withConnection { connection in
            try await closure(PostgresConnectionDatabase(connection: connection, statements: statements, logger: logger))
        }
    }
}
