import ChorusCore
import Synchronization

/// Enforces a stream's deadlines with one timer task per stream, not one per chunk:
/// connect (until the response head), first token, between tokens and total.
final class StreamWatchdog: Sendable {
    private struct State {
        var phase: ChorusError.TimeoutPhase = .connect
        var deadline: ContinuousClock.Instant
        var limit: Double
    }

    private let timeouts: ModelTimeouts
    private let start: ContinuousClock.Instant
    private let totalDeadline: ContinuousClock.Instant
    private let state: Mutex<State>

    init(timeouts: ModelTimeouts) {
        let now = ContinuousClock.now
        self.timeouts = timeouts
        self.start = now
        self.totalDeadline = now + .seconds(timeouts.total)
        self.state = Mutex(State(deadline: now + .seconds(min(timeouts.connect, timeouts.total)), limit: timeouts.connect))
    }

    /// The response head arrived: now waiting for the first token.
    func connected() {
        state.withLock {
            $0.phase = .firstToken
            $0.deadline = start + .seconds(timeouts.firstToken)
            $0.limit = timeouts.firstToken
        }
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
