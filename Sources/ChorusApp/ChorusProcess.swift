import Logging
public import ServiceLifecycle
import ChorusRuntime

/// A process that serves HTTP (`chorus serve`, `chorus gateway`), stopped in phases on SIGTERM
/// (docs/OPERATIONS.md): first the drain (`/readyz` answers 503, new work is refused, streams in
/// flight finish within `shutdown.grace_seconds` or are cut), then the application — its HTTP
/// server, then its services in reverse order (the worker hands its tasks back, the audit log
/// and the usage records are written, the database closes) — and last the metrics listener.
public struct ChorusProcess: Service {
    /// In start order; a graceful stop runs in reverse, each part once the one after it returned.
    let services: [any Service]
    let logger: Logger

    init(application: any Service, drain: ShutdownDrain, metricsListener: (any Service)?, logger: Logger) {
        var services: [any Service] = []
        if let metricsListener { services.append(metricsListener) }
        services.append(application)
        services.append(DrainPhase(drain: drain, logger: logger))
        self.services = services
        self.logger = logger
    }

    public func run() async throws {
        try await ServiceGroup(services: services, logger: logger).run()
    }

}

/// The drain as a service: idle until the graceful stop begins, which it is the first to get.
struct DrainPhase: Service {
    let drain: ShutdownDrain
    let logger: Logger

    func run() async throws {
        // Cancelled rather than stopped gracefully: nothing to drain for.
        guard (try? await gracefulShutdown()) != nil else { return }
        await drain.drain(logger: logger)
    }
}
