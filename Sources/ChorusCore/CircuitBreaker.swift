/// A deployment's passive health: closed (calls go through), open after `failureThreshold`
/// consecutive failures (calls skip it for `cooldownSeconds`), then half-open — one probe call is
/// let through; its success closes the breaker, its failure opens it for another cool-down.
///
/// A value type with no clock of its own: the caller passes `now` (seconds), so the deployment
/// that owns it can keep it under its lock and tests can step time.
public struct CircuitBreaker: Sendable, Equatable {
    public enum State: String, Sendable {
        case closed
        case open
        case halfOpen = "half_open"
    }

    public let failureThreshold: Int
    public let cooldownSeconds: Double
    public private(set) var consecutiveFailures = 0
    /// While open: until when.
    public private(set) var openUntil: Double?
    /// Half-open with its one probe call in flight.
    private var probing = false

    public init(failureThreshold: Int, cooldownSeconds: Double) {
        self.failureThreshold = max(1, failureThreshold)
        self.cooldownSeconds = cooldownSeconds
    }

    public func state(now: Double) -> State {
        guard let openUntil else { return .closed }
        return now < openUntil ? .open : .halfOpen
    }

    /// Whether a call may go now; a half-open breaker lets exactly one through until it reports.
    public func admits(now: Double) -> Bool {
        switch state(now: now) {
        case .closed: true
        case .open: false
        case .halfOpen: !probing
        }
    }

    /// Records that a call was let through (the half-open probe, if it is one).
    public mutating func admitted(now: Double) {
        if state(now: now) == .halfOpen { probing = true }
    }

    /// The call let through ended with no verdict (its client left): the next call may probe.
    public mutating func recordNeither() {
        probing = false
    }

    /// Returns true when this success closed an open breaker.
    @discardableResult
    public mutating func recordSuccess() -> Bool {
        let wasOpen = openUntil != nil
        consecutiveFailures = 0
        openUntil = nil
        probing = false
        return wasOpen
    }

    /// Returns true when this failure opened the breaker (or opened it again after a probe).
    @discardableResult
    public mutating func recordFailure(now: Double) -> Bool {
        consecutiveFailures += 1
        let failedProbe = probing || state(now: now) == .halfOpen
        probing = false
        guard failedProbe || (openUntil == nil && consecutiveFailures >= failureThreshold) else { return false }
        openUntil = now + cooldownSeconds
        return true
    }

    /// Another process saw this deployment fail: skip it until `until` as if it had failed here.
    public mutating func openRemotely(until: Double) {
        if (openUntil ?? 0) < until { openUntil = until }
    }
}
