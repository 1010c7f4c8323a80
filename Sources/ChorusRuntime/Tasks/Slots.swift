import ChorusCore
import ChorusStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Counts free task slots; lets the consumer wait for one and the drain wait for all.
final class Slots: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let total: Int
    private let state: Mutex<State>

    init(_ total: Int) {
        self.total = total
        self.state = Mutex(State(free: total))
    }

    func take() { state.withLock { $0.free -= 1 } }

    func release() {
        let waiters = state.withLock { state in
            state.free += 1
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The number of free slots, once there is at least one.
    func waitForFree() async -> Int {
        while true {
            let free = state.withLock { $0.free }
            if free > 0 { return free }
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.free > 0 { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    func waitUntilIdle() async {
        while state.withLock({ $0.free }) < total {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}
