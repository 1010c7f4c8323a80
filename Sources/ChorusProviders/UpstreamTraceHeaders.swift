import NIOHTTP1
import Tracing

extension HTTPHeaders {
    /// Adds the current span's W3C trace context (`traceparent`, `tracestate`) to an upstream call,
    /// so that an upstream that traces continues Chorus's trace. Nothing when nothing is traced.
    mutating func addTraceContext() {
        guard let context = ServiceContext.current else { return }
        InstrumentationSystem.instrument.inject(context, into: &self, using: UpstreamHeadersInjector())
    }
}

struct UpstreamHeadersInjector: Injector {
    func inject(_ value: String, forKey key: String, into headers: inout HTTPHeaders) {
        headers.replaceOrAdd(name: key, value: value)
    }
}
