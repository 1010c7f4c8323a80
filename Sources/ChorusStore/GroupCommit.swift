import SQLKit
import Synchronization

/// Group commit for SQLite's single writer: transactions that arrive while another batch is
/// being written are run back to back inside one `BEGIN IMMEDIATE … COMMIT`, so the lock, the
/// `BEGIN`, the `COMMIT` and the hop to the writer thread are paid once per batch instead of once
/// per transaction. The first caller to find no batch running writes the batches itself
/// (no extra task), on `executor` when one is given; the others wait for theirs.
///
/// A transaction whose body throws rolls the whole batch back; then every transaction of that
/// batch runs again on its own, so each caller gets exactly the outcome it would have had alone.
/// Bodies only touch the database, so running one twice after a rollback is safe.
final class GroupCommitter: Sendable {
    typealias Run = @Sendable (any SQLDatabase) async throws -> Void

    final class Item: Sendable {
        /// Dropped as soon as the item is finished: the caller's body must not outlive its call
        /// (`SQLiteBackend.transaction` passes it with `withoutActuallyEscaping`).
        private let body: Mutex<Run?>
        private let state = Mutex<(done: Result<Void, any Error>?, waiter: CheckedContinuation<Void, any Error>?)>((nil, nil))

        init(run: @escaping Run) {
            self.body = Mutex(run)
        }

        func run(_ db: any SQLDatabase) async throws {
            guard let body = body.withLock({ $0 }) else { return }
            try await body(db)
        }

        func finish(_ result: Result<Void, any Error>) {
            body.withLock { $0 = nil }
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                state.done = result
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(with: result)
        }

        func wait() async throws {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let done = state.withLock { state -> Result<Void, any Error>? in
                    if state.done == nil { state.waiter = continuation }
                    return state.done
                }
                if let done { continuation.resume(with: done) }
            }
        }
    }

    private struct Queue {
        var pending: [Item] = []
        var writing = false
    }

    private let queue = Mutex(Queue())
    private let maxBatch: Int
    private let executor: (any TaskExecutor)?
    /// Runs one transaction (BEGIN … COMMIT or ROLLBACK) around `body`, under the writer lock.
    private let transaction: @Sendable (_ body: @Sendable (any SQLDatabase) async throws -> Void) async throws -> Void

    init(maxBatch: Int = 64, executor: (any TaskExecutor)? = nil, transaction: @escaping @Sendable (_ body: @Sendable (any SQLDatabase) async throws -> Void) async throws -> Void) {
        self.maxBatch = maxBatch
        self.executor = executor
        self.transaction = transaction
    }

    func submit(_ item: Item) async throws {
        let leads = queue.withLock { queue -> Bool in
            queue.pending.append(item)
            guard !queue.writing else { return false }
            queue.writing = true
            return true
        }
        if leads { await withTaskExecutorPreference(executor) { await writeBatches() } }
        try await item.wait()
    }

    private func writeBatches() async {
        while true {
            let batch = queue.withLock { queue -> [Item] in
                let batch = Array(queue.pending.prefix(maxBatch))
                queue.pending.removeFirst(batch.count)
                if batch.isEmpty { queue.writing = false }
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                try await transaction { db in
                    for item in batch { try await item.run(db) }
                }
                for item in batch { item.finish(.success(())) }
            } catch where batch.count > 1 {
                // Someone's body failed (or the commit did): each again, alone.
                for item in batch {
                    do {
                        try await transaction { db in try await item.run(db) }
                        item.finish(.success(()))
                    } catch {
                        item.finish(.failure(error))
                    }
                }
            } catch {
                batch[0].finish(.failure(error))
            }
        }
    }
}
