public import Tracing

/// W3C trace context carried where no HTTP header can go: in a queue entry, so that a task's
/// worker run continues the trace of the request that submitted it (gateway → queue → worker).
public enum TraceParent {
    /// The current span's `traceparent`, or nil when nothing is being traced (the no-op tracer
    /// injects nothing, so an entry carries no field when tracing is off).
    public static var current: String? {
        guard let context = ServiceContext.current else { return nil }
        var fields: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &fields, using: DictionaryInjector())
        return fields["traceparent"]
    }

    /// A context whose span continues the trace that `traceparent` names (top level without one).
    public static func context(_ traceparent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        if let traceparent {
            InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: DictionaryExtractor())
        }
        return context
    }

    struct DictionaryInjector: Injector {
        func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
            carrier[key] = value
        }
    }

    struct DictionaryExtractor: Extractor {
        func extract(key: String, from carrier: [String: String]) -> String? {
            carrier[key]
        }
    }
}
