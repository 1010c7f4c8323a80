import ChorusCore
import Synchronization

/// How many of one batch's tasks run at once (the Async-Chat form's `gemini_concurrency`): a task
/// takes a slot before its call and gives it back after, across every worker of the shape.
///
/// A slot is held under a lease that the holder renews while it runs, so a worker that dies does
/// not keep its slot for good.
public protocol BatchSlots: Sendable {
    /// Takes a slot of `batch` for `task` if fewer than `limit` are held; false otherwise.
    func tryAcquire(batch: String, task: String, limit: Int, leaseSeconds: Double) async throws -> Bool
    /// Extends the lease of a held slot.
    func renew(batch: String, task: String, leaseSeconds: Double) async throws
    func release(batch: String, task: String) async throws
}

extension BatchSlots {
    /// Runs `body` holding a slot of `batch`: waits (polling) until one is free, renews it while
    /// `body` runs, and gives it back after, even when `body` throws.
    public func withSlot<T: Sendable>(
        batch: String, task: String, limit: Int, leaseSeconds: Double = 30, body: () async throws -> T
    ) async throws -> T {
        while try await !tryAcquire(batch: batch, task: task, limit: limit, leaseSeconds: leaseSeconds) {
            try await Task.sleep(for: .milliseconds(200))
        }
        let renewal = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(leaseSeconds / 3))
                try? await renew(batch: batch, task: task, leaseSeconds: leaseSeconds)
            }
        }
        defer { renewal.cancel() }
        do {
            let result = try await body()
            try? await release(batch: batch, task: task)
            return result
        } catch {
            // In a task of its own: the caller's may be cancelled.
            try? await Task { try await release(batch: batch, task: task) }.value
            throw error
        }
    }
}

/// The embedded shape's slots: in memory (one process runs every task).
public final class InProcessBatchSlots: BatchSlots {
    /// batch → task → lease end (ms).
    private let held = Mutex<[String: [String: Int64]]>([:])

    public init() {}

    public func tryAcquire(batch: String, task: String, limit: Int, leaseSeconds: Double) async throws -> Bool {
        let now = nowMilliseconds()
        return held.withLock { held in
            var slots = held[batch, default: [:]].filter { $0.value > now }
            guard slots[task] != nil || slots.count < limit else { return false }
            slots[task] = now + Int64(leaseSeconds * 1000)
            held[batch] = slots
            return true
        }
    }

    public func renew(batch: String, task: String, leaseSeconds: Double) async throws {
        held.withLock { held in
            if held[batch]?[task] != nil { held[batch]?[task] = nowMilliseconds() + Int64(leaseSeconds * 1000) }
        }
    }

    public func release(batch: String, task: String) async throws {
        held.withLock { held in
            held[batch]?[task] = nil
            if held[batch]?.isEmpty == true { held[batch] = nil }
        }
    }
}
