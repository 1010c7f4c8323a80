import AsyncHTTPClient
import ChorusCore
import ChorusProviders
import ChorusRedis
import ChorusRuntime
import ChorusStore
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import ServiceLifecycle

/// The pieces the distributed processes share: PostgreSQL, Redis, the model table.
public struct DistributedParts: Sendable {
    public let backend: PostgresBackend
    public let redis: RedisClient
    public let clients: UpstreamClients
    public let models: ModelRegistry
    public let queue: RedisTaskQueue
    public let bus: RedisEventBus
    public let engine: ChatEngine<SQLConversationStore>
    public let taskService: TaskService<SQLConversationStore>
    public let handlers: [any TaskHandler]
    /// Accounts, with rate-limit counters in Redis shared by every process.
    public let security: Security

    /// Services that must run for the parts to work, in start order.
    public var services: [any Service] {
        [backend, redis, ShutdownService(name: "upstream-http-clients") { try await clients.shutdown() }]
    }

    public static func make(configuration: ChorusConfiguration, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment, localModels: Set<String>? = nil) throws -> DistributedParts {
        guard let postgresURL = configuration.storage.postgresURL else {
            throw ConfigurationError(key: "storage.postgres_url", problem: "missing; the distributed shape keeps its state in PostgreSQL (CHORUS_STORAGE_POSTGRES_URL)")
        }
        guard let redisURL = configuration.redis.url, var redisConfiguration = RedisConfiguration(url: redisURL) else {
            throw ConfigurationError(key: "redis.url", problem: "missing or invalid; the distributed shape queues work in Redis (CHORUS_REDIS_URL)")
        }
        redisConfiguration.connectionCount = configuration.redis.connections
        redisConfiguration.maxDedicatedConnections = configuration.redis.blockingConnections
        var postgresLogger = logger
        postgresLogger.logLevel = max(logger.logLevel, .warning)
        var postgres = try PostgresBackend.Configuration(url: postgresURL, maximumConnections: configuration.storage.postgresConnections)
        postgres.preparedStatements = configuration.storage.postgresPreparedStatements
        let backend = PostgresBackend(configuration: postgres, logger: postgresLogger)
        let redis = RedisClient(configuration: redisConfiguration, logger: logger)
        let clients = makeUpstreamClients(configuration: configuration)
        // A gateway serves the synchronous API for every model but runs no local model server;
        // a worker runs the local models it serves.
        var modelConfigurations = configuration.models
        if let localModels {
            modelConfigurations = modelConfigurations.filter { $0.local == nil || localModels.contains($0.name) }
        }
        let models = ModelRegistry(models: modelConfigurations, clients: clients, environment: environment, logger: logger)
        let store = SQLConversationStore(backend: backend)
        let engine = ChatEngine(store: store, models: models, historyMessages: configuration.conversations.historyMessages, checkpointSeconds: configuration.conversations.checkpointSeconds, storeByDefault: configuration.conversations.store, logger: logger)
        let queue = RedisTaskQueue(redis: redis, prefix: configuration.redis.prefix, logger: logger)
        let bus = RedisEventBus(redis: redis, prefix: configuration.redis.prefix, logger: logger)
        // Gateways cache resolved credentials; every change to accounts, on any gateway or worker,
        // replaces the version in Redis, so a revocation holds on the next request everywhere.
        let security = Security(
            configuration: configuration, backend: backend, limiter: RedisRateLimiter(redis: redis, prefix: configuration.redis.prefix),
            accountsVersion: RedisAccountsVersion(redis: redis, prefix: configuration.redis.prefix), cacheCredentials: true, logger: logger)
        let handlers: [any TaskHandler] = [ChatTaskHandler(engine: engine, accounts: security.accounts), ConversationExportHandler(store: store)]
        let taskService = TaskService(tasks: SQLTaskStore(backend: backend), conversations: store, queue: queue, bus: bus, models: models, handlers: handlers, logger: logger)
        return DistributedParts(
            backend: backend, redis: redis, clients: clients, models: models, queue: queue, bus: bus, engine: engine,
            taskService: taskService, handlers: handlers, security: security)
    }

    /// Applies pending migrations (safe when several processes start at once).
    public func migrate(logger: Logger) async throws {
        try await Migrator(backend: backend, logger: logger).migrate()
    }
}

/// `chorus gateway`: the stateless HTTP API over PostgreSQL and Redis. Any number run side by side.
public func buildGatewayApplication(
    configuration: ChorusConfiguration,
    logger: Logger,
    onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
) throws -> some ApplicationProtocol {
    let parts = try DistributedParts.make(configuration: configuration, logger: logger, localModels: [])
    let security = parts.security
    let router = buildRouter(engine: parts.engine, models: parts.models, configuration: configuration, tasks: parts.taskService, database: parts.backend.database, security: security)
    var app = Application(
        router: router,
        server: .chorusHTTP1(webSocketRouter: router, idleTimeoutSeconds: configuration.http.idleTimeoutSeconds),
        configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port), serverName: "chorus-gateway", backlog: configuration.http.backlog),
        services: parts.services + [security.audit],
        onServerRunning: { channel in
            await onListening(configuration.http.host, channel.localAddress?.port ?? configuration.http.port)
        },
        logger: logger)
    app.beforeServerStarts {
        try await parts.migrate(logger: logger)
        try await security.prepare(environment: ProcessInfo.processInfo.environment)
    }
    return app
}

/// `chorus worker`: consumes the queues of some models (and the generic task queue), runs their
/// tasks, and any local model servers among them.
public func buildWorker(configuration: ChorusConfiguration, name: String, models requested: [String], logger: Logger) throws -> [any Service] {
    let known = Set(configuration.models.map(\.name))
    let models = requested.isEmpty ? configuration.models.map(\.name) : requested
    for model in models where !known.contains(model) {
        throw ConfigurationError(key: "--models", problem: "`\(model)` is not a configured model (configured: \(known.sorted().joined(separator: ", ")))")
    }
    let parts = try DistributedParts.make(configuration: configuration, logger: logger, localModels: Set(models))
    let worker = TaskWorker(
        settings: workerSettings(configuration, id: name, queues: models + [TaskService<SQLConversationStore>.genericQueue]),
        queue: parts.queue, bus: parts.bus, tasks: parts.taskService.tasks, handlers: parts.handlers, logger: logger)
    let migrateThenWork = MigratingWorker(parts: parts, worker: worker, logger: logger)
    return parts.services + (parts.models.supervisors as [any Service]) + [migrateThenWork]
}

/// Applies migrations, then runs the worker.
struct MigratingWorker: Service {
    let parts: DistributedParts
    let worker: TaskWorker
    let logger: Logger

    func run() async throws {
        try await parts.migrate(logger: logger)
        try await worker.run()
    }
}
