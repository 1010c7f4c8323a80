public import SQLKit
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
    /// Each connection pool's connections in use now (for `/metrics`, read when scraped).
    var pools: [PoolUsage] { get }
    func close() async throws
}

/// One connection pool's use at an instant.
public struct PoolUsage: Sendable, Equatable {
    /// `sqlite_writer`, `sqlite_readers` or `postgres`.
    public var pool: String
    /// Connections running a statement (SQLite) or leased (PostgreSQL) now.
    public var inUse: Int
    /// Statements waiting for a connection now.
    public var waiting: Int
    /// The most connections the pool holds.
    public var maximum: Int

    public init(pool: String, inUse: Int, waiting: Int, maximum: Int) {
        self.pool = pool
        self.inUse = inUse
        self.waiting = waiting
        self.maximum = maximum
    }
}

/// Counts the callers inside a pool (`enter` … `leave`) and those of them holding a connection
/// (`acquire` … `release`): relaxed atomics, a few per statement, so that a scrape can say how busy
/// the pool is.
final class PoolGauge: Sendable {
    private let entered = Atomic<Int>(0)
    private let using = Atomic<Int>(0)

    func enter() { entered.add(1, ordering: .relaxed) }
    func leave() { entered.subtract(1, ordering: .relaxed) }
    func acquire() { using.add(1, ordering: .relaxed) }
    func release() { using.subtract(1, ordering: .relaxed) }

    func usage(pool: String, maximum: Int) -> PoolUsage {
        let inUse = using.load(ordering: .relaxed)
        return PoolUsage(pool: pool, inUse: inUse, waiting: max(0, entered.load(ordering: .relaxed) - inUse), maximum: maximum)
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
