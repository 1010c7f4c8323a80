import ChorusCore
import Synchronization

/// Enforces a stream's deadlines with one timer task per stream, not one per chunk: first token
/// (counted from the request, so a server slow to send its response head is caught too), between
/// tokens, and total. The TCP connect timeout is the HTTP client's.
final class StreamWatchdog: Sendable {
    private struct State {
        var phase: ChorusError.TimeoutPhase = .firstToken
        var deadline: ContinuousClock.Instant
        var limit: Double
    }

    private let timeouts: ModelTimeouts
    private let totalDeadline: ContinuousClock.Instant
    private let state: Mutex<State>

    init(timeouts: ModelTimeouts) {
        let now = ContinuousClock.now
        self.timeouts = timeouts
        self.totalDeadline = now + .seconds(timeouts.total)
        self.state = Mutex(State(deadline: now + .seconds(timeouts.firstToken), limit: timeouts.firstToken))
    }

    /// A token arrived: the gap timer restarts.
    func tokenArrived() {
        let now = ContinuousClock.now
        state.withLock {
            $0.phase = .betweenTokens
            $0.deadline = now + .seconds(timeouts.betweenTokens)
            $0.limit = timeouts.betweenTokens
        }
    }

    /// Sleeps until a deadline passes, then throws `upstreamTimeout`. Cancel it when the stream ends.
    func run() async throws {
        while true {
            let (phase, deadline, limit) = state.withLock { ($0.phase, $0.deadline, $0.limit) }
            let now = ContinuousClock.now
            if now >= totalDeadline {
                throw ChorusError.upstreamTimeout(phase: .total, seconds: timeouts.total)
            }
            if now >= deadline {
                throw ChorusError.upstreamTimeout(phase: phase, seconds: limit)
            }
            try await Task.sleep(until: min(deadline, totalDeadline), clock: .continuous)
        }
    }
}
