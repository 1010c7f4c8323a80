import ChorusCore
import ChorusProviders
import ChorusStore
import Foundation
import Logging
import Synchronization
import Tracing

extension ChatEngine {
    /// Makes a turn's upstream call through its model's deployments: a failure before anything
    /// reached the client is retried on another healthy deployment (backoff with jitter, honouring
    /// the upstream's `Retry-After`), then each fallback model is tried in order. After the first
    /// token a failure is the turn's: another model's text is never spliced onto it.
    ///
    /// `started` says whether anything reached the client yet; `call` makes one call.
    func routed(_ turn: PreparedTurn, started: () -> Bool, call: (any ChatProvider) async throws -> Void) async throws {
        var lastError: any Error = ChorusError.modelUnavailable(model: turn.model, reason: "it has no deployment")
        for (position, route) in ([turn.route] + turn.fallbacks).enumerated() {
            if position > 0 {
                logger.warning("falling back to another model", metadata: ["request_id": "\(turn.requestID)", "model": "\(turn.model)", "fallback": "\(route.name)", "error": "\(lastError)"])
            }
            var avoiding = Set<Int>()
            var attempt = 0
            attempts: while true {
                let lease: DeploymentLease
                do {
                    lease = try await route.acquire(affinity: turn.affinity, avoiding: avoiding)
                } catch let error as ChorusError {
                    // No healthy deployment, or all full for too long: the next model may take it.
                    lastError = error
                    break attempts
                }
                turn.servedBy.set(.init(model: route.name, deployment: lease.deployment.key))
                do {
                    try await withSpan("upstream.call", ofKind: .client) { span in
                        span.attributes["chorus.model"] = route.name
                        span.attributes["chorus.deployment"] = lease.deployment.key
                        span.attributes["chorus.attempt"] = attempt
                        try await UpstreamCallSpan.$current.withValue(span) {
                            try await call(lease.deployment.provider)
                        }
                    }
                    lease.release(.success)
                    metrics.upstreamCall(model: route.name, deployment: lease.deployment.key, error: nil)
                    // `request_id` / `task_id` and `trace_id` come from the task's context (`LogContext`).
                    logger.debug("upstream call finished", metadata: ["model": "\(route.name)", "deployment": "\(lease.deployment.key)"])
                    return
                } catch {
                    lease.release(Self.outcome(of: error))
                    metrics.upstreamCall(model: route.name, deployment: lease.deployment.key, error: error)
                    guard !started(), let chorusError = error as? ChorusError, Self.isRetryable(chorusError) else { throw error }
                    lastError = error
                    avoiding.insert(lease.deployment.index)
                    guard attempt < route.configuration.retries else { break attempts }
                    attempt += 1
                    var delay = route.configuration.retryBackoffSeconds * Double(1 << (attempt - 1)) * Double.random(in: 0.5...1.5)
                    let now = Date.now.timeIntervalSince1970
                    let another = route.deployments.contains { !avoiding.contains($0.index) && $0.isHealthy(now: now) }
                    if !another, case .upstreamError(_, _, let retryAfter?) = chorusError {
                        // The same server asked for a pause: wait it out if short, else move on.
                        guard retryAfter <= Self.longestRetryAfter else { break attempts }
                        delay = max(delay, retryAfter)
                    }
                    metrics.retry(model: route.name)
                    logger.warning("retrying the upstream call", metadata: [
                        "request_id": "\(turn.requestID)", "model": "\(route.name)", "deployment": "\(lease.deployment.key)",
                        "attempt": "\(attempt)", "error": "\(chorusError.message)", "delay_s": "\(delay)",
                    ])
                    try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
                }
            }
        }
        throw lastError
    }

    /// A `Retry-After` longer than this is not waited for: the next model is tried instead.
    static var longestRetryAfter: Double { 10 }

    /// How a failed call reflects on the deployment that made it.
    static func outcome(of error: any Error) -> Deployment.Outcome {
        switch error {
        case let error as ChorusError:
            switch error {
            case .upstreamError(_, let status, _): (status ?? 500) >= 500 || status == 429 ? .failure : .success
            case .upstreamTimeout: .failure
            case .invalidRequest: .success  // the server judged the request: it is alive
            default: .neutral
            }
        default: .neutral  // cancelled: the client left
        }
    }

    /// Worth another try before any token arrived: the upstream's 5xx or 429, a lost connection,
    /// or no first token in time. A 4xx is the request's fault and would fail again.
    static func isRetryable(_ error: ChorusError) -> Bool {
        switch error {
        case .upstreamError(_, let status, _): status == nil || status! >= 500 || status == 429
        case .upstreamTimeout(let phase, _): phase == .firstToken || phase == .connect
        default: false
        }
    }
}

/// The completion a non-streamed call returns, out of the routing closure.
final class OutputBox: Sendable {
    private let output = Mutex(CompletionOutput())

    var value: CompletionOutput { output.withLock { $0 } }

    func set(_ value: CompletionOutput) {
        output.withLock { $0 = value }
    }
}
