import Logging
import NIOPosix
import SQLKit
import SQLiteKit
import Synchronization

/// A SQL database that Chorus's repositories run on: SQLite (embedded) or PostgreSQL (distributed).
///
/// Every write goes through `transaction`, so a repository never depends on which dialect it runs on.
public protocol SQLBackend: Sendable {
    /// For reads outside a transaction.
    var database: any SQLDatabase { get }
    /// Runs `body` in one transaction: committed if it returns, rolled back if it throws.
    func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T
    /// Runs one writing statement, atomic by itself (no BEGIN/COMMIT round trips); counted as a
    /// write transaction.
    func write(_ statement: SQLQueryString) async throws
    /// `write` for a statement with `RETURNING`: the rows it returns.
    func writeReturning(_ statement: SQLQueryString) async throws -> [any SQLRow]
    /// The number of write transactions committed since start (for the storage benchmark).
    var committedWrites: Int { get }
    func close() async throws
}

/// SQLite through SQLiteNIO: calls run on NIO's thread pool, never on an event loop.
///
/// One connection, WAL journal. SQLite has one writer at a time anyway, and a transaction must not
/// interleave with another task's statements on the same connection, so writes take an async lock.
public final class SQLiteBackend: SQLBackend {
    private let connection: SQLiteConnection
    public let database: any SQLDatabase
    private let writeLock = AsyncLock()
    private let writes = Atomic<Int>(0)
    private let committer: GroupCommitter

    public var committedWrites: Int { writes.load(ordering: .relaxed) }

    public static func open(path: String, logger: Logger) async throws -> SQLiteBackend {
        let storage: SQLiteConnection.Storage = path == ":memory:" ? .memory : .file(path: path)
        let connection = try await SQLiteConnection.open(storage: storage, logger: logger)
        let backend = SQLiteBackend(connection: connection)
        for pragma in ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON", "PRAGMA busy_timeout = 5000"] {
            try await backend.database.raw(SQLQueryString(pragma)).run()
        }
        return backend
    }

    private init(connection: SQLiteConnection) {
        self.connection = connection
        let database = connection.sql()
        self.database = database
        let lock = writeLock
        self.committer = GroupCommitter { body in
            try await lock.withLock {
                try await database.raw("BEGIN IMMEDIATE").run()
                do {
                    try await body(database)
                    try await database.raw("COMMIT").run()
                } catch {
                    try? await database.raw("ROLLBACK").run()
                    throw error
                }
            }
        }
    }

    /// One logical transaction; concurrent ones are committed together (see `GroupCommitter`).
    /// `committedWrites` counts logical transactions.
    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        try await withoutActuallyEscaping(body) { body in
            let result = Mutex<T?>(nil)
            let item = GroupCommitter.Item { db in
                let value = try await body(db)
                result.withLock { $0 = value }
            }
            try await committer.submit(item)
            writes.add(1, ordering: .relaxed)
            return result.withLock { $0! }
        }
    }

    public func write(_ statement: SQLQueryString) async throws {
        _ = try await writeReturning(statement)
    }

    public func writeReturning(_ statement: SQLQueryString) async throws -> [any SQLRow] {
        // Under the lock: on the one connection, a statement must not land inside another task's transaction.
        try await writeLock.withLock {
            let rows = try await database.raw(statement).all()
            writes.add(1, ordering: .relaxed)
            return rows
        }
    }

    public func close() async throws {
        try await connection.close()
    }
}

/// A FIFO async mutex: waiters suspend instead of blocking a thread.
final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func withLock<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await lock()
        defer { unlock() }
        return try await body()
    }

    private func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state -> Bool in
                if state.locked {
                    state.waiters.append(continuation)
                    return false
                }
                state.locked = true
                return true
            }
            if acquired { continuation.resume() }
        }
    }

    private func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
