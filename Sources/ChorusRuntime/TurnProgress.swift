import ChorusCore
import Synchronization

/// The answer so far, and when it was last checkpointed.
final class TurnProgress: Sendable {
    private struct State {
        var output = CompletionOutput()
        var lastCheckpoint = ContinuousClock.now
        var checkpoint: Task<Void, Never>?
        /// When the turn began, and when its last token arrived.
        let began = ContinuousClock.now
        var lastToken: ContinuousClock.Instant?
        var firstTokenAfter: Duration?
    }

    /// What one event meant: a checkpoint that is due, and for a token, the time since the one
    /// before it (or, for the first, since the turn began).
    struct Applied {
        var checkpoint: CompletionOutput?
        var sincePrevious: Duration?
        var isFirstToken = false
    }
    private let state = Mutex(State())
    private let interval: Duration

    init(checkpointSeconds: Double) {
        interval = .milliseconds(Int64(checkpointSeconds * 1000))
    }

    var output: CompletionOutput { state.withLock { $0.output } }

    /// Whether anything arrived (after which a failure can no longer be retried).
    var started: Bool { state.withLock { $0.output.started } }

    /// How long the first token took (retries included), once it came.
    var firstTokenAfter: Duration? { state.withLock { $0.firstTokenAfter } }

    /// Adds the event to the output. Gives the output to checkpoint when the interval has passed
    /// since the last checkpoint and that one has been written, and the token's timing (one lock
    /// per token).
    func apply(_ event: ProviderEvent) -> Applied {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.output.apply(event)
            var applied = Applied()
            switch event {
            case .content, .reasoning, .refusal, .toolCalls:
                applied.sincePrevious = now - (state.lastToken ?? state.began)
                applied.isFirstToken = state.lastToken == nil
                if applied.isFirstToken { state.firstTokenAfter = now - state.began }
                state.lastToken = now
            case .logprobs, .metadata, .finish, .usage:
                break
            }
            guard now - state.lastCheckpoint >= interval, state.checkpoint == nil else { return applied }
            state.lastCheckpoint = now
            applied.checkpoint = state.output
            return applied
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
