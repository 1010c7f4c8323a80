import AsyncHTTPClient
import ChorusCore
import NIOCore
import Synchronization

/// Enforces a stream's deadlines with one event-loop timer per stream, not a task and not a
/// timer per chunk: first token (counted from the start of the call, so a server slow to send its
/// response head is caught too), between tokens, and total. A deadline that passes fails the
/// upstream request with `upstreamTimeout`. The TCP connect timeout is the HTTP client's.
final class StreamWatchdog: Sendable {
    private struct State {
        var phase: ChorusError.TimeoutPhase = .firstToken
        var deadline: NIODeadline
        var limit: Double
        var task: HTTPClient.Task<Void>?
        var timer: Scheduled<Void>?
        /// When the timer fires; a deadline moved earlier than this re-arms it.
        var timerDeadline: NIODeadline?
        /// Which timer is current: one replaced by an earlier one does nothing when it fires.
        var generation = 0
        var stopped = false
        /// The caller is busy with what arrived; the gap deadline waits for it.
        var consuming = false
    }

    private let timeouts: ModelTimeouts
    private let totalDeadline: NIODeadline
    private let state: Mutex<State>

    init(timeouts: ModelTimeouts) {
        let now = NIODeadline.now()
        self.timeouts = timeouts
        self.totalDeadline = now + Self.amount(timeouts.total)
        self.state = Mutex(State(deadline: now + Self.amount(timeouts.firstToken), limit: timeouts.firstToken))
    }

    /// A token arrived: the gap deadline restarts. A later deadline is noticed when the timer
    /// fires; an earlier one (the first token, when the gap limit is shorter than what was left
    /// of the first-token limit) re-arms the timer for it.
    func tokenArrived() {
        let deadline = NIODeadline.now() + Self.amount(timeouts.betweenTokens)
        state.withLock { state in
            state.phase = .betweenTokens
            state.limit = timeouts.betweenTokens
            move(&state, to: deadline)
        }
    }

    /// Runs the caller's handling of a token. Only the upstream's silence counts against the gap
    /// deadline, not Chorus's own time: a task run begun before its claim holds its first token
    /// until the claim is won, however long that takes. The gap restarts when the handling ends.
    func consuming(_ body: () async throws -> Void) async throws {
        state.withLock { $0.consuming = true }
        defer {
            let deadline = NIODeadline.now() + Self.amount(timeouts.betweenTokens)
            state.withLock { state in
                state.consuming = false
                move(&state, to: deadline)
            }
        }
        try await body()
    }

    /// The stream ended: the timer goes.
    func stop() {
        let timer: Scheduled<Void>? = state.withLock { state in
            state.stopped = true
            defer { state.timer = nil }
            return state.timer
        }
        timer?.cancel()
    }

    /// Starts watching a request: when a deadline passes, the request fails with `upstreamTimeout`.
    /// The timer re-arms itself for the current deadline until `stop()`.
    func watch(_ task: HTTPClient.Task<Void>) {
        state.withLock { $0.task = task }
        check(firedGeneration: nil)
    }

    /// Fails the request if a deadline has passed, or arms the timer for the next one.
    private func check(firedGeneration: Int?) {
        let now = NIODeadline.now()
        let expired: (ChorusError, HTTPClient.Task<Void>)? = state.withLock { state in
            guard !state.stopped, let task = state.task else { return nil }
            if let firedGeneration, firedGeneration != state.generation { return nil }
            if now >= totalDeadline { return (.upstreamTimeout(phase: .total, seconds: timeouts.total), task) }
            if state.consuming, now >= state.deadline { state.deadline = now + Self.amount(state.limit) }
            if now >= state.deadline { return (.upstreamTimeout(phase: state.phase, seconds: state.limit), task) }
            arm(&state, task)
            return nil
        }
        if let (error, task) = expired { task.fail(reason: error) }
    }

    private func move(_ state: inout State, to deadline: NIODeadline) {
        state.deadline = deadline
        guard !state.stopped, let task = state.task, let armed = state.timerDeadline, deadline < armed else { return }
        state.timer?.cancel()
        arm(&state, task)
    }

    private func arm(_ state: inout State, _ task: HTTPClient.Task<Void>) {
        state.generation += 1
        let generation = state.generation
        let deadline = min(state.deadline, totalDeadline)
        state.timerDeadline = deadline
        state.timer = task.eventLoop.scheduleTask(deadline: deadline) { [self] in
            check(firedGeneration: generation)
        }
    }

    private static func amount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}
