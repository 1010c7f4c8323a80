import ChorusCore
import ChorusHTTP
public import ChorusProviders
public import ChorusRuntime
public import ChorusStore
public import Foundation
public import Hummingbird
public import Logging
import ServiceLifecycle

/// `chorus serve`: SQLite, the model table with its local model servers, the in-process queue and
/// event bus with one worker for every queue, and the HTTP API, as one Hummingbird application.
public func buildServeApplication(
    configuration: ChorusConfiguration,
    logger: Logger,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
) async throws -> ChorusProcess {
    let chorus = try await EmbeddedChorus.open(configuration: configuration, logger: logger, environment: environment)
    return chorus.assembly.process(application: chorus.application(onListening: onListening))
}

/// Embedded Chorus on its open, migrated SQLite database: what `buildServeApplication` serves,
/// and what tests reach into (the store, the queue) while they drive the same application.
public struct EmbeddedChorus: Sendable {
    public let assembly: ChorusAssembly
    public let queue: InProcessQueue
    public let bus: InProcessEventBus
    public let clients: UpstreamClients

    public var backend: any SQLBackend { assembly.backend }
    public var store: SQLConversationStore { assembly.store }
    public var security: Security { assembly.security }

    /// Opens (creating its folder) and migrates the database, prepares accounts, builds the parts.
    public static func open(configuration: ChorusConfiguration, logger: Logger, environment: [String: String]) async throws -> EmbeddedChorus {
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let sqliteFolder = (configuration.storage.sqlitePath as NSString).deletingLastPathComponent
        if !sqliteFolder.isEmpty {
            try FileManager.default.createDirectory(atPath: sqliteFolder, withIntermediateDirectories: true)
        }
        let backend = try await SQLiteBackend.open(path: configuration.storage.sqlitePath, logger: logger)
        let clients = UpstreamClients(configuration: configuration)
        do {
            try await Migrator(backend: backend, logger: logger).migrate()
            logger.info("database ready", metadata: ["sqlite": "\(configuration.storage.sqlitePath)"])
            let security = Security(configuration: configuration, backend: backend, limiter: InMemoryRateLimiter(), cacheCredentials: true, logger: logger)
            try await security.prepare(environment: environment)
            let models = ModelRegistry(models: configuration.models, clients: clients, environment: environment, logger: logger)
            let (queue, bus) = (InProcessQueue(), InProcessEventBus())
            let assembly = ChorusAssembly(
                configuration: configuration, backend: backend, models: models, queue: queue, bus: bus, security: security, logger: logger)
            return EmbeddedChorus(assembly: assembly, queue: queue, bus: bus, clients: clients)
        } catch {
            try? await clients.shutdown()
            try? await backend.close()
            throw error
        }
    }

    /// The application. Services start before the HTTP server and stop after it, in reverse order:
    /// the server drains, then the worker and the local models stop, the audit log is written, the
    /// database closes, and the HTTP client shuts down.
    /// - Parameter runWorker: false leaves queued tasks waiting (tests that count writes).
    public func application(
        runWorker: Bool = true, onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
    ) -> some ApplicationProtocol {
        let (clients, backend) = (self.clients, assembly.backend)
        var services: [any Service] = [
            ClosureService { try? await gracefulShutdown(); try await clients.shutdown() },
            ClosureService { try? await gracefulShutdown(); try await backend.close() },
            assembly.security.audit,
            assembly.usage,
        ]
        services += assembly.models.supervisors as [any Service]
        services.append(assembly.models.healthProber(clients: clients))
        if runWorker {
            services.append(assembly.worker(id: "embedded", models: assembly.models.names))
        }
        return assembly.application(name: "chorus", services: services, onListening: onListening)
    }
}
