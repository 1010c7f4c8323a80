import ChorusCore
import ChorusStore
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Publishes a task's events: shielded from the task's cancellation (a cancelled publish could
/// leave a hole in the sequence), retried with backoff while the bus is unreachable.
struct EventPublisher: Sendable {
    let bus: any TaskEventBus
    let patience: Duration
    let logger: Logger

    func publish(_ event: TaskEvent) async throws {
        // Almost every publish succeeds at once: try it in the caller's task first (no task and
        // no hand-offs per token). A cancelled or failed attempt goes to the shielded retry, which
        // first learns whether it went through after all.
        if !Task.isCancelled {
            do {
                try await bus.publish(event)
                return
            } catch let error as ChorusError {
                throw error  // refused: another worker has the task
            } catch {}
        }
        try await publishShielded(event)
    }

    private func publishShielded(_ event: TaskEvent) async throws {
        let bus = self.bus
        let patience = self.patience
        try await Task {
            let deadline = ContinuousClock.now + patience
            var backoff = Duration.milliseconds(50)
            while true {
                do {
                    try await bus.publish(event)
                    return
                } catch {
                    // A lost reply may hide a publish that went through.
                    if let last = try? await bus.lastSequence(taskID: event.taskID), last >= event.seq { return }
                    if error is ChorusError { throw error }  // refused: another worker has the task
                    guard ContinuousClock.now + backoff < deadline else { throw EventBusUnavailable(underlying: error) }
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(2))
                }
            }
        }.value
    }
}

/// The next event sequence number of one task run.
final class EventSequence: Sendable {
    private let value: Mutex<Int>

    init(start: Int) {
        value = Mutex(start)
    }

    var current: Int { value.withLock { $0 } }

    func next() -> Int {
        value.withLock { $0 += 1; return $0 }
    }
}

/// The bus could not take a task's event for longer than the worker's patience.
struct EventBusUnavailable: Error {
    let underlying: any Error
}
