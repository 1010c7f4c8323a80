import AsyncHTTPClient
import ChorusCore
import NIOCore
import Synchronization

/// Enforces a stream's deadlines with one event-loop timer per stream, not a task and not a
/// timer per chunk: first token (counted from the start of the call, so a server slow to send its
/// response head is caught too), between tokens, and total. A deadline that passes fails the
/// upstream request with `upstreamTimeout`. The TCP connect timeout is the HTTP client's (one per value).
final class StreamWatchdog: Sendable {
    private struct State {
        var phase: ChorusError.TimeoutPhase = .firstToken
        var deadline: NIODeadline
        var limit: Double
        var timer: Scheduled<Void>?
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

    /// A token arrived: the gap deadline restarts (the timer notices when it fires: it is never
    /// armed later than this deadline, see `watch`).
    func tokenArrived() {
        let deadline = NIODeadline.now() + Self.amount(timeouts.betweenTokens)
        state.withLock {
            $0.phase = .betweenTokens
            $0.deadline = deadline
            $0.limit = timeouts.betweenTokens
        }
    }

    /// Runs the caller's handling of a token. Only the upstream's silence counts against the gap
    /// deadline, not Chorus's own time: a task run begun before its claim holds its first token
    /// until the claim is won, however long that takes. The gap restarts when the handling ends.
    func consuming(_ body: () async throws -> Void) async throws {
        state.withLock { $0.consuming = true }
        defer {
            let deadline = NIODeadline.now() + Self.amount(timeouts.betweenTokens)
            state.withLock {
                $0.consuming = false
                $0.deadline = deadline
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
        let now = NIODeadline.now()
        let expired: ChorusError? = state.withLock { state in
            guard !state.stopped else { return nil }
            if now >= totalDeadline { return .upstreamTimeout(phase: .total, seconds: timeouts.total) }
            if state.consuming, now >= state.deadline { state.deadline = now + Self.amount(state.limit) }
            if now >= state.deadline { return .upstreamTimeout(phase: state.phase, seconds: state.limit) }
            // Deadlines only move later, except at the first token: the gap deadline that starts
            // then can be earlier than what is left of the first-token deadline. So until the first
            // token the timer is armed at most one gap limit ahead, and the gap deadline, which
            // starts after this moment, is never earlier than the timer.
            var next = min(state.deadline, totalDeadline)
            if state.phase == .firstToken { next = min(next, now + Self.amount(timeouts.betweenTokens)) }
            state.timer = task.eventLoop.scheduleTask(deadline: next) { [self] in
                watch(task)
            }
            return nil
        }
        if let expired { task.fail(reason: expired) }
    }

    private static func amount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(min(seconds, 1e9) * 1e9))
    }
}
