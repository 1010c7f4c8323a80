public import ChorusCore
import CoreMetrics
public import Prometheus
import Synchronization

/// Chorus's metrics, through swift-metrics into one Prometheus registry that `GET /metrics`
/// renders. Each process (and each test) has its own: nothing is bootstrapped globally.
/// Names follow Prometheus conventions: the `chorus_` prefix, `_total`, `_seconds`.
public final class ChorusMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: any MetricsFactory
    /// Timers and counters by label and dimensions, made once (making one takes the registry's lock).
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let meters = Mutex<[String: CoreMetrics.Meter]>([:])

    /// - Parameter enabled: false records nothing (every handler is swift-metrics' no-op one).
    public init(enabled: Bool = true) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60].map { .milliseconds(Int64($0 * 1000)) }
        factory.defaultDurationHistogramBuckets = seconds
        factory.durationHistogramBuckets["chorus_inter_token_seconds"] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5].map { .milliseconds(Int64($0 * 1000)) }
        self.registry = registry
        self.factory = enabled ? factory : NOOPMetricsHandler.instance
    }

    /// The registry in Prometheus's text format.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
        let key = Self.key(label, dimensions)
        return timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
            timers[key] = timer
            return timer
        }
    }

    func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        let key = Self.key(label, dimensions)
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = counter
            return counter
        }
    }

    func meter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Meter {
        let key = Self.key(label, dimensions)
        return meters.withLock { meters in
            if let meter = meters[key] { return meter }
            let meter = CoreMetrics.Meter(label: label, dimensions: dimensions, factory: factory)
            meters[key] = meter
            return meter
        }
    }

    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        dimensions.reduce(label) { $0 + "\u{1}" + $1.0 + "=" + $1.1 }
    }

    // MARK: What Chorus records

    /// An HTTP request, by route template (not the raw path: ids would explode the series).
    public func httpRequest(route: String, method: String, status: Int, duration: Duration) {
        counter("chorus_http_requests_total", [("route", route), ("method", method), ("status", String(status))]).increment()
        timer("chorus_http_request_duration_seconds", [("route", route), ("method", method)]).recordNanoseconds(duration.nanoseconds)
    }

    public func firstToken(model: String, after duration: Duration) {
        timer("chorus_time_to_first_token_seconds", [("model", model)]).recordNanoseconds(duration.nanoseconds)
    }

    /// The gaps between tokens of one model: a turn keeps it and records each gap.
    public func tokenGaps(model: String) -> TokenGaps {
        TokenGaps(timer: timer("chorus_inter_token_seconds", [("model", model)]))
    }

    public struct TokenGaps: Sendable {
        let timer: CoreMetrics.Timer

        public func record(_ gap: Duration) { timer.recordNanoseconds(gap.nanoseconds) }
    }

    public func tokens(model: String, usage: Usage) {
        counter("chorus_tokens_total", [("model", model), ("kind", "prompt")]).increment(by: usage.promptTokens)
        counter("chorus_tokens_total", [("model", model), ("kind", "completion")]).increment(by: usage.completionTokens)
        if let reasoning = usage.completionTokensDetails?["reasoning_tokens"]?.intValue {
            counter("chorus_tokens_total", [("model", model), ("kind", "reasoning")]).increment(by: reasoning)
        }
    }

    /// One call to a model's upstream, and how it failed if it did.
    public func upstreamCall(model: String, error: (any Error)?) {
        counter("chorus_upstream_requests_total", [("model", model)]).increment()
        guard let error else { return }
        counter("chorus_upstream_errors_total", [("model", model), ("kind", Self.kind(of: error))]).increment()
    }

    public func retry(model: String) {
        counter("chorus_upstream_retries_total", [("model", model)]).increment()
    }

    /// A complete answer that could not be stored (its client got it all the same).
    public func answerNotStored() {
        counter("chorus_answer_store_failures_total", []).increment()
    }

    /// Streams open now: `sse` (chat completions, task events) or `websocket`.
    public func streamOpened(_ kind: String) { meter("chorus_active_streams", [("kind", kind)]).increment() }
    public func streamClosed(_ kind: String) { meter("chorus_active_streams", [("kind", kind)]).decrement() }

    /// Gauges read at scrape time (queues, tasks by state, dead letters).
    public func set(_ label: String, _ dimensions: [(String, String)], to value: Int) {
        meter(label, dimensions).set(value)
    }

    static func kind(of error: any Error) -> String {
        switch error {
        case is CancellationError: return "cancelled"
        case ChorusError.upstreamTimeout(.connect, _): return "connect"
        case ChorusError.upstreamTimeout: return "timeout"
        case ChorusError.upstreamError(_, let status?) where status >= 500: return "5xx"
        case ChorusError.upstreamError(_, let status?) where status == 429: return "429"
        case ChorusError.upstreamError(_, nil): return "connect"
        case ChorusError.invalidRequest: return "4xx"
        default: return "other"
        }
    }
}

extension Duration {
    /// The whole duration in nanoseconds (swift-metrics timers take them).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
