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
    /// false: every method returns at once (nothing looked up, nothing recorded).
    let enabled: Bool
    /// Handles made once and found again by a hashed key (making one takes the registry's lock).
    private let http = Mutex<[HTTPKey: (CoreMetrics.Counter, CoreMetrics.Timer)]>([:])
    private let perModel = Mutex<[String: ModelMetrics]>([:])
    private let others = Mutex<[String: CoreMetrics.Meter]>([:])
    private let storeFailures: CoreMetrics.Counter
    /// Gauges of the process's parts (connection pools), set when `/metrics` is scraped.
    private let samplers = Mutex<[@Sendable (ChorusMetrics) -> Void]>([])

    private struct HTTPKey: Hashable {
        var route: String
        var method: String
        var status: Int
    }

    /// One model's series.
    final class ModelMetrics: Sendable {
        let firstToken: CoreMetrics.Timer
        let gaps: CoreMetrics.Timer
        let retries: CoreMetrics.Counter
        let cacheHits, cacheMisses: CoreMetrics.Counter
        let prompt, completion, reasoning: CoreMetrics.Counter
        private let errors: Mutex<[String: CoreMetrics.Counter]>
        private let model: String
        private let factory: any MetricsFactory

        init(model: String, factory: any MetricsFactory) {
            let dimensions = [("model", model)]
            firstToken = CoreMetrics.Timer(label: "chorus_time_to_first_token_seconds", dimensions: dimensions, factory: factory)
            gaps = CoreMetrics.Timer(label: "chorus_inter_token_seconds", dimensions: dimensions, factory: factory)
            retries = CoreMetrics.Counter(label: "chorus_upstream_retries_total", dimensions: dimensions, factory: factory)
            cacheHits = CoreMetrics.Counter(label: "chorus_cache_lookups_total", dimensions: dimensions + [("result", "hit")], factory: factory)
            cacheMisses = CoreMetrics.Counter(label: "chorus_cache_lookups_total", dimensions: dimensions + [("result", "miss")], factory: factory)
            prompt = CoreMetrics.Counter(label: "chorus_tokens_total", dimensions: dimensions + [("kind", "prompt")], factory: factory)
            completion = CoreMetrics.Counter(label: "chorus_tokens_total", dimensions: dimensions + [("kind", "completion")], factory: factory)
            reasoning = CoreMetrics.Counter(label: "chorus_tokens_total", dimensions: dimensions + [("kind", "reasoning")], factory: factory)
            errors = Mutex([:])
            self.model = model
            self.factory = factory
        }

        /// `chorus_upstream_requests_total` (kind nil) or `chorus_upstream_errors_total` of a deployment.
        func upstream(deployment: String, error kind: String?) -> CoreMetrics.Counter {
            let key = deployment + "\u{0}" + (kind ?? "")
            return errors.withLock { counters in
                if let counter = counters[key] { return counter }
                let counter = kind.map {
                    CoreMetrics.Counter(label: "chorus_upstream_errors_total", dimensions: [("model", model), ("deployment", deployment), ("kind", $0)], factory: factory)
                } ?? CoreMetrics.Counter(label: "chorus_upstream_requests_total", dimensions: [("model", model), ("deployment", deployment)], factory: factory)
                counters[key] = counter
                return counter
            }
        }
    }

    /// - Parameter enabled: false records nothing.
    public init(enabled: Bool = true) {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60].map { .milliseconds(Int64($0 * 1000)) }
        factory.defaultDurationHistogramBuckets = seconds
        factory.durationHistogramBuckets["chorus_inter_token_seconds"] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5].map { .milliseconds(Int64($0 * 1000)) }
        self.registry = registry
        self.factory = enabled ? factory : NOOPMetricsHandler.instance
        self.enabled = enabled
        self.storeFailures = CoreMetrics.Counter(label: "chorus_answer_store_failures_total", dimensions: [], factory: self.factory)
    }

    /// The registry in Prometheus's text format.
    public func render() -> [UInt8] {
        registry.emitToBuffer()
    }

    func model(_ name: String) -> ModelMetrics {
        perModel.withLock { models in
            if let metrics = models[name] { return metrics }
            let metrics = ModelMetrics(model: name, factory: factory)
            models[name] = metrics
            return metrics
        }
    }

    private func meter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Meter {
        let key = dimensions.reduce(label) { $0 + "\u{1}" + $1.0 + "=" + $1.1 }
        return others.withLock { meters in
            if let meter = meters[key] { return meter }
            let meter = CoreMetrics.Meter(label: label, dimensions: dimensions, factory: factory)
            meters[key] = meter
            return meter
        }
    }

    // MARK: What Chorus records

    /// An HTTP request, by route template (not the raw path: ids would explode the series).
    public func httpRequest(route: String, method: String, status: Int, duration: Duration) {
        guard enabled else { return }
        let key = HTTPKey(route: route, method: method, status: status)
        let (counter, timer) = http.withLock { handles in
            if let pair = handles[key] { return pair }
            let pair = (
                CoreMetrics.Counter(label: "chorus_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
                CoreMetrics.Timer(label: "chorus_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory))
            handles[key] = pair
            return pair
        }
        counter.increment()
        timer.recordNanoseconds(duration.nanoseconds)
    }

    public func firstToken(model name: String, after duration: Duration) {
        guard enabled else { return }
        model(name).firstToken.recordNanoseconds(duration.nanoseconds)
    }

    /// The gaps between tokens of one model: a turn keeps it and records each gap.
    public func tokenGaps(model name: String) -> TokenGaps {
        TokenGaps(timer: enabled ? model(name).gaps : nil)
    }

    public struct TokenGaps: Sendable {
        let timer: CoreMetrics.Timer?

        public func record(_ gap: Duration) { timer?.recordNanoseconds(gap.nanoseconds) }
    }

    public func tokens(model name: String, usage: Usage) {
        guard enabled else { return }
        let metrics = model(name)
        metrics.prompt.increment(by: usage.promptTokens)
        metrics.completion.increment(by: usage.completionTokens)
        if let reasoning = usage.completionTokensDetails?["reasoning_tokens"]?.intValue {
            metrics.reasoning.increment(by: reasoning)
        }
    }

    /// One call to a model's upstream, and how it failed if it did.
    public func upstreamCall(model name: String, deployment: String, error: (any Error)?) {
        guard enabled else { return }
        let metrics = model(name)
        metrics.upstream(deployment: deployment, error: nil).increment()
        if let error { metrics.upstream(deployment: deployment, error: Self.kind(of: error)).increment() }
    }

    public func retry(model name: String) {
        guard enabled else { return }
        model(name).retries.increment()
    }

    /// A cacheable turn answered from the response cache, or by the model.
    public func cacheLookup(model name: String, hit: Bool) {
        guard enabled else { return }
        (hit ? model(name).cacheHits : model(name).cacheMisses).increment()
    }

    /// A complete answer that could not be stored (its client got it all the same).
    public func answerNotStored() {
        storeFailures.increment()
    }

    /// Streams open now: `sse` (chat completions) or `websocket`.
    public func streamOpened(_ kind: String) {
        guard enabled else { return }
        meter("chorus_active_streams", [("kind", kind)]).increment()
    }

    public func streamClosed(_ kind: String) {
        guard enabled else { return }
        meter("chorus_active_streams", [("kind", kind)]).decrement()
    }

    /// Adds gauges that `sampleParts()` sets, at each scrape (connections in use: reading them
    /// costs a lock, nothing between scrapes).
    public func sampleWhenScraped(_ sampler: @escaping @Sendable (ChorusMetrics) -> Void) {
        guard enabled else { return }
        samplers.withLock { $0.append(sampler) }
    }

    /// Sets the gauges `sampleWhenScraped` added.
    public func sampleParts() {
        for sampler in samplers.withLock({ $0 }) { sampler(self) }
    }

    /// Gauges read at scrape time (queues, tasks by state, dead letters).
    public func set(_ label: String, _ dimensions: [(String, String)], to value: Int) {
        guard enabled else { return }
        meter(label, dimensions).set(value)
    }

    static func kind(of error: any Error) -> String {
        switch error {
        case is CancellationError: return "cancelled"
        case ChorusError.upstreamTimeout(.connect, _): return "connect"
        case ChorusError.upstreamTimeout: return "timeout"
        case ChorusError.upstreamError(_, let status?, _) where status >= 500: return "5xx"
        case ChorusError.upstreamError(_, let status?, _) where status == 429: return "429"
        case ChorusError.upstreamError(_, nil, _): return "connect"
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
