import ChorusCore
public import ChorusProviders
import Foundation
import Synchronization

/// One server of a model, at run time: its provider, how many calls it has in flight, its circuit
/// breaker, whether its health URL answers, and its recent outcomes (for the admin view).
public final class Deployment: Sendable {
    public enum Outcome: Sendable {
        /// The call went through (an answer, or a 4xx that is the request's fault).
        case success
        /// The deployment failed it: 5xx, 429, a lost connection, a timeout, a broken stream.
        case failure
        /// Neither: the caller gave up (a client disconnect).
        case neutral
    }

    /// What changed the breaker, for the other processes (`BreakerBoard`).
    public enum BreakerChange: Sendable, Equatable {
        case opened(until: Double)
        case closed
    }

    public let model: String
    public let index: Int
    /// Stable across processes with the same configuration: `model/index`.
    public let key: String
    public let settings: ModelConfiguration.Deployment
    public let provider: any ChatProvider

    private struct Recent {
        var at: Double
        var failed: Bool
        var seconds: Double
    }

    private struct State {
        var inFlight = 0
        var breaker: CircuitBreaker
        var probeHealthy = true
        var recent: [Recent] = []
        var nextRecent = 0
    }

    private static let recentCapacity = 100
    private let state: Mutex<State>

    init(model: String, index: Int, settings: ModelConfiguration.Deployment, breaker: ModelConfiguration.Breaker?, provider: any ChatProvider) {
        self.model = model
        self.index = index
        self.key = "\(model)/\(index)"
        self.settings = settings
        self.provider = provider
        // Without a breaker: one that never opens.
        self.state = Mutex(State(breaker: CircuitBreaker(failureThreshold: breaker?.failures ?? .max, cooldownSeconds: breaker?.cooldownSeconds ?? 0)))
    }

    /// Not known to be failing: its breaker is not open and its health URL (if any) answers.
    func isHealthy(now: Double) -> Bool {
        state.withLock { $0.probeHealthy && $0.breaker.state(now: now) != .open }
    }

    /// Healthy and at its `max_concurrency`.
    func isHealthyButFull(now: Double) -> Bool {
        state.withLock { state in
            guard state.probeHealthy, state.breaker.state(now: now) != .open, let limit = settings.maxConcurrency else { return false }
            return state.inFlight >= limit
        }
    }

    /// Takes one slot when the deployment admits a call now.
    func tryAcquire(now: Double) -> Bool {
        state.withLock { state in
            guard state.probeHealthy, state.breaker.admits(now: now) else { return false }
            if let limit = settings.maxConcurrency, state.inFlight >= limit { return false }
            state.inFlight += 1
            state.breaker.admitted(now: now)
            return true
        }
    }

    /// Gives the slot back with how the call went; returns a breaker change to share.
    func release(_ outcome: Outcome, seconds: Double, now: Double) -> BreakerChange? {
        state.withLock { state in
            state.inFlight -= 1
            guard outcome != .neutral else {
                state.breaker.recordNeither()
                return nil
            }
            let entry = Recent(at: now, failed: outcome == .failure, seconds: seconds)
            if state.recent.count < Self.recentCapacity {
                state.recent.append(entry)
            } else {
                state.recent[state.nextRecent] = entry
            }
            state.nextRecent = (state.nextRecent + 1) % Self.recentCapacity
            switch outcome {
            case .success:
                return state.breaker.recordSuccess() ? .closed : nil
            case .failure:
                return state.breaker.recordFailure(now: now) ? .opened(until: state.breaker.openUntil ?? now) : nil
            case .neutral:
                return nil
            }
        }
    }

    /// Another process opened this deployment's breaker.
    func openRemotely(until: Double) {
        state.withLock { $0.breaker.openRemotely(until: until) }
    }

    func setProbeHealthy(_ healthy: Bool) {
        state.withLock { $0.probeHealthy = healthy }
    }

    /// A URL as it may be shown: a `user:password@` in it is not (a secret stays out of views).
    static func withoutCredentials(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].firstIndex(of: "@"),
              !url[scheme.upperBound..<at].contains("/") else { return url }
        return String(url[..<scheme.upperBound]) + String(url[url.index(after: at)...])
    }

    /// For `GET /v1/admin/deployments`: the last five minutes of outcomes.
    public func status(now: Double) -> DeploymentStatus {
        state.withLock { state in
            let window = state.recent.filter { now - $0.at <= 300 }
            let failures = window.filter(\.failed).count
            let latencies = window.filter { !$0.failed }.map(\.seconds).sorted()
            return DeploymentStatus(
                model: model, key: key, baseURL: Self.withoutCredentials(settings.baseURL), upstreamModel: settings.upstreamModel,
                weight: settings.weight, maxConcurrency: settings.maxConcurrency,
                state: state.probeHealthy ? state.breaker.state(now: now).rawValue : "unhealthy",
                inFlight: state.inFlight, consecutiveFailures: state.breaker.consecutiveFailures,
                openUntil: state.breaker.state(now: now) == .open ? state.breaker.openUntil : nil,
                recentCalls: window.count, recentErrorRate: window.isEmpty ? 0 : Double(failures) / Double(window.count),
                latencyP50Seconds: latencies.isEmpty ? nil : latencies[latencies.count / 2])
        }
    }
}
