public import ChorusCore
public import Logging
import Synchronization

/// The first phase of a graceful stop of a process that serves HTTP (docs/OPERATIONS.md): from
/// SIGTERM on, `/readyz` answers 503 and new work is refused, while the listener stays open and
/// the requests in flight run on. Streams still open when the grace has passed are cut (an SSE
/// error event, the partial answer saved). Only then does the HTTP server itself stop.
public final class ShutdownDrain: Sendable {
    /// How long requests in flight may run on after SIGTERM (`shutdown.grace_seconds`).
    public let grace: Duration
    /// How long cut streams get to write their error event and save their partial answer.
    let afterCut: Duration

    private struct State {
        var draining = false
        /// Admitted requests of new work whose response is not yet fully written.
        var inFlight = 0
        var nextStream = 0
        /// How to cut each open stream, by its registration.
        var streams: [Int: @Sendable () -> Void] = [:]
    }
    private let state = Mutex(State())

    public init(graceSeconds: Double, afterCut: Duration = .seconds(5)) {
        self.grace = .milliseconds(Int64(graceSeconds * 1000))
        self.afterCut = afterCut
    }

    /// The cancellation reason (`CancellationNote`) of a stream cut at the end of the grace: the
    /// partial answer is saved with `reason=shutdown`.
    public static let cutReason = "shutdown"
    /// What the client of a cut stream is told, as an SSE error event.
    public static let cutError = ChorusError.unavailable("The server is shutting down: this answer was cut short (the part so far is saved).")

    public var isDraining: Bool { state.withLock { $0.draining } }
    public var inFlight: Int { state.withLock { $0.inFlight } }

    /// Counts a request of new work until `finished()`; false (refuse it) once draining.
    public func admit() -> Bool {
        state.withLock { state in
            guard !state.draining else { return false }
            state.inFlight += 1
            return true
        }
    }

    public func finished() {
        state.withLock { $0.inFlight -= 1 }
    }

    /// Registers an open stream that `cut` ends early; returns the key for `closed(_:)`.
    public func opened(cut: @escaping @Sendable () -> Void) -> Int {
        state.withLock { state in
            state.nextStream += 1
            state.streams[state.nextStream] = cut
            return state.nextStream
        }
    }

    public func closed(_ key: Int) {
        _ = state.withLock { $0.streams.removeValue(forKey: key) }
    }

    /// Starts refusing new work; returns once the work in flight is done, or the grace passed and
    /// the streams still open were cut (and had a moment to say so and save their answer).
    public func drain(logger: Logger) async {
        let open = state.withLock { state in
            state.draining = true
            return state.inFlight
        }
        logger.info("draining: refusing new work, waiting for the requests in flight", metadata: [
            "in_flight": "\(open)", "grace_s": "\(grace.components.seconds)",
        ])
        let clock = ContinuousClock()
        if await waitForNoneInFlight(until: clock.now + grace) { return }
        let cuts = state.withLock { Array($0.streams.values) }
        logger.warning("grace period over: cutting the streams still open", metadata: ["streams": "\(cuts.count)", "in_flight": "\(inFlight)"])
        for cut in cuts { cut() }
        _ = await waitForNoneInFlight(until: clock.now + afterCut)
    }

    /// Polls (a stop is rare, and this keeps the request path to one lock) until nothing is in
    /// flight; false when `deadline` came first.
    private func waitForNoneInFlight(until deadline: ContinuousClock.Instant) async -> Bool {
        while inFlight > 0 {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return true
    }
}
