public import ChorusRuntime
public import Logging
import OTel
public import ServiceLifecycle
import Tracing

/// OpenTelemetry for one process: with `tracing.otlp_endpoint` set, a tracer that batches spans to
/// `<endpoint>/v1/traces` (OTLP/HTTP, JSON) and the service that exports and flushes them; without
/// it, nothing (spans stay swift-distributed-tracing's no-op ones).
public enum ChorusTracing {
    /// Bootstraps the process-wide tracer (once, in `main`) and returns its exporting service,
    /// to run alongside the process's services; nil when tracing is off.
    /// - Parameter serviceName: `chorus`, `chorus-gateway` or `chorus-worker`.
    public static func bootstrap(_ settings: ChorusConfiguration.Tracing, serviceName: String, logger: Logger) throws -> (any Service)? {
        guard let endpoint = settings.otlpEndpoint else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.otlpExporter.endpoint = (endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint) + "/v1/traces"
        configuration.traces.otlpExporter.protocol = .httpJSON
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.propagators = [.traceContext]
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        logger.info("tracing to an OTLP collector", metadata: ["endpoint": "\(endpoint)", "service": "\(serviceName)"])
        return backend.service
    }

    /// What every log line gets from the task it is written in: `request_id` / `task_id`
    /// (`LogContext`) and, while a span is recording, `trace_id` and `span_id`.
    public static var logMetadataProvider: Logger.MetadataProvider {
        .multiplex([LogContext.metadataProvider, OTel.makeLoggingMetadataProvider()]) ?? LogContext.metadataProvider
    }
}
