import Foundation
import Logging
import PostgresKit
import PostgresNIO
import SQLKit
import Synchronization

/// Which of Chorus's statements PostgreSQL keeps prepared, and under what names.
///
/// An unnamed statement is parsed and planned by the server every time it runs: for a task's
/// submission, claim and finish that is more than half of PostgreSQL's time. A statement whose text
/// (with the types of its parameters) has been seen before gets a name, and each connection then
/// prepares it once and afterwards only binds and executes it, as `SQLiteHandle` keeps its prepared
/// statements. The first sighting runs unnamed, so one-off statements (migrations, DDL) never take a
/// name. At most `capacity` names are given out; later statements all run unnamed.
final class PostgresStatements: Sendable {
    private struct State {
        var seenOnce: Set<String> = []
        var names: [String: String] = [:]
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The name to run `key` under, or nil to run it unnamed this time.
    func name(for key: String) -> String? {
        state.withLock { state in
            if let name = state.names[key] { return name }
            guard state.names.count < capacity else { return nil }
            if state.seenOnce.remove(key) == nil {
                // The first sighting; forget the oldest sightings rather than grow without bound.
                if state.seenOnce.count >= 4 * capacity { state.seenOnce.removeAll(keepingCapacity: true) }
                state.seenOnce.insert(key)
                return nil
            }
            let name = "chorus_\(state.names.count + 1)"
            state.names[key] = name
            return name
        }
    }

    /// Runs `query` on `connection`: as a prepared statement when `name(for:)` gives one (and
    /// every parameter is of a type encoded here), unnamed otherwise.
    func run(
        _ query: any SQLExpression, on connection: PostgresConnection, logger: Logger,
        _ onRow: @escaping @Sendable (any SQLRow) -> Void
    ) async throws {
        let (sql, binds) = PostgresConnectionDatabase(connection: connection, statements: self, logger: logger).serialize(query)
        var bindings = PostgresBindings(capacity: binds.count)
        var signature = ""
        var encodable = true
        for bind in binds where encodable {
            encodable = Self.append(bind, to: &bindings, signature: &signature)
        }
        guard encodable else {
            // A parameter of another type: let PostgresKit encode it, unnamed.
            try await connection.sql(logger: logger).execute(sql: query, onRow)
            return
        }
        guard Self.preparable(sql), let name = name(for: signature + "\u{0}" + sql) else {
            let rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
            for try await row in rows { onRow(row.sql()) }
            return
        }
        do {
            let rows = try await RuntimeStatement.$current.withValue(.init(name: name, sql: sql)) {
                try await connection.execute(RuntimeStatement(bindings: bindings), logger: logger)
            }
            for try await row in rows { onRow(row.sql()) }
        } catch let error as PSQLError {
            // PostgresNIO remembers a failed preparation on the connection for good, and a changed
            // schema can make a prepared plan unusable: such a connection is closed (the pool opens
            // a new one), so that the next attempt prepares afresh.
            if let state = error.serverInfo?[.sqlState], Self.poisonsConnection(sqlState: state) {
                logger.warning("closing a PostgreSQL connection after a prepared statement failed", metadata: ["sqlstate": "\(state)"])
                try? await connection.close()
            }
            throw error
        }
    }

    /// Only these statements can be prepared (not BEGIN, DDL, SET, …).
    static func preparable(_ sql: String) -> Bool {
        let head = sql.utf8.prefix(7).map { $0 | 0x20 }  // ASCII lowercase
        for verb in ["select ", "insert ", "update ", "delete ", "with "] where head.starts(with: verb.utf8) {
            return true
        }
        return false
    }

    /// Errors after which a connection's prepared statements cannot be trusted: a failed
    /// transaction (a statement first prepared then fails to parse), a missing or changed table or
    /// column, a cached plan whose result changed, a statement the server no longer knows.
    static func poisonsConnection(sqlState: String) -> Bool {
        ["25", "42", "0A", "26"].contains(String(sqlState.prefix(2)))
    }

    /// Encodes one of the parameter types Chorus binds, the way PostgresKit would (`Int` as
    /// `int8`, `nil` as an untyped NULL), and records its type in `signature`: a text prepared with
    /// a NULL in one place is another statement than with a value there.
    static func append(_ bind: any Encodable & Sendable, to bindings: inout PostgresBindings, signature: inout String) -> Bool {
        // The concrete types first (a non-nil optional casts to its wrapped type); only what
        // matched none of them pays for the protocol check.
        switch bind {
        case let value as String: bindings.append(value); signature += "s"
        case let value as Int64: bindings.append(value); signature += "i"
        case let value as Int: bindings.append(value); signature += "i"
        case let value as Int32: bindings.append(value); signature += "4"
        case let value as Bool: bindings.append(value); signature += "b"
        case let value as Double: bindings.append(value); signature += "d"
        case let optional as any OptionalValue where optional.isNone: bindings.appendNull(); signature += "n"
        default: return false
        }
        return true
    }
}

private protocol OptionalValue {
    var isNone: Bool { get }
}

extension Optional: OptionalValue {
    var isNone: Bool { self == nil }
}

/// A statement built at run time, for PostgresNIO's prepared-statement API.
///
/// PostgresNIO takes a prepared statement's name and text from static members, as it expects one
/// type per statement; Chorus's statements are built by the repositories (which share them with
/// SQLite). So the name and text are a task-local value set around the call:
/// `PostgresConnection.execute(_:logger:)` reads both synchronously in the calling task, before it
/// first suspends. Reading them anywhere else is a programming error and stops the process.
struct RuntimeStatement: PostgresPreparedStatement {
    struct Current: Sendable {
        var name: String
        var sql: String
    }

    @TaskLocal static var current: Current?

    static var name: String {
        guard let current else { preconditionFailure("RuntimeStatement.name read outside RuntimeStatement.$current") }
        return current.name
    }

    static var sql: String {
        guard let current else { preconditionFailure("RuntimeStatement.sql read outside RuntimeStatement.$current") }
        return current.sql
    }

    typealias Row = PostgresRow

    let bindings: PostgresBindings

    func makeBindings() -> PostgresBindings { bindings }

    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}

/// `SQLDatabase` on one connection (a transaction's, or one leased for a single statement) whose
/// statements go through `PostgresStatements`.
struct PostgresConnectionDatabase: SQLDatabase {
    let connection: PostgresConnection
    let statements: PostgresStatements
    let logger: Logger

    var eventLoop: any EventLoop { connection.eventLoop }
    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { nil }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        eventLoop.makeFutureWithTask { try await self.execute(sql: query, onRow) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try await statements.run(query, on: connection, logger: logger, onRow)
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await closure(self)
    }
}
