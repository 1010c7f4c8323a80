import ChorusCore
import ChorusProviders
import ChorusStore
import Logging
import Metrics
import Synchronization

/// The answer so far, and when it was last checkpointed.
final class TurnProgress: Sendable {
    private struct State {
        var output = CompletionOutput()
        var lastCheckpoint = ContinuousClock.now
        var checkpoint: Task<Void, Never>?
    }
    private let state = Mutex(State())
    private let interval: Duration

    init(checkpointSeconds: Double) {
        interval = .milliseconds(Int64(checkpointSeconds * 1000))
    }

    var output: CompletionOutput { state.withLock { $0.output } }

    /// Whether anything arrived (after which a failure can no longer be retried).
    var started: Bool { state.withLock { $0.output.started } }

    /// Adds the event to the output. Returns the output to checkpoint when the interval has passed
    /// since the last checkpoint and that one has been written (one lock per token).
    func apply(_ event: ProviderEvent) -> CompletionOutput? {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.output.apply(event)
            guard now - state.lastCheckpoint >= interval, state.checkpoint == nil else { return nil }
            state.lastCheckpoint = now
            return state.output
        }
    }

    func checkpointStarted(_ task: Task<Void, Never>) {
        state.withLock { $0.checkpoint = task }
        Task {
            await task.value
            self.state.withLock { if $0.checkpoint == task { $0.checkpoint = nil } }
        }
    }

    /// Waits for the checkpoint being written, if any.
    func checkpointsFinished() async {
        await state.withLock { $0.checkpoint }?.value
    }
}
