import Synchronization

/// Runs of each declared command under way in this process, for `max_concurrency`.
final class CommandLimits: Sendable {
    private let running = Mutex<[String: Int]>([:])

    func tryTake(_ name: String, limit: Int) -> Bool {
        running.withLock { running in
            guard running[name, default: 0] < limit else { return false }
            running[name, default: 0] += 1
            return true
        }
    }

    /// Waits for a free run of `name`; a cancelled wait throws. Polled: jobs are long and few,
    /// and a poll leaves no waiter behind when the task is cancelled.
    func take(_ name: String, limit: Int) async throws {
        while !tryTake(name, limit: limit) {
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    func release(_ name: String) {
        running.withLock { $0[name, default: 1] -= 1 }
    }
}
