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
    func close() async throws
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
