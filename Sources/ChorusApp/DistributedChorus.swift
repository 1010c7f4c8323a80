import ChorusCore
import ChorusHTTP
public import ChorusProviders
public import ChorusRedis
public import ChorusRuntime
public import ChorusStore
public import Foundation
import Hummingbird
public import Logging
public import ServiceLifecycle

/// `chorus gateway`: the stateless HTTP API over PostgreSQL and Redis. Any number run side by side.
public func buildGatewayApplication(
    configuration: ChorusConfiguration,
    logger: Logger,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
) throws -> ChorusProcess {
    // A gateway serves the synchronous API for every model but runs no local model server.
    let chorus = try DistributedChorus(configuration: configuration, logger: logger, environment: environment, localModels: [])
    let assembly = chorus.assembly
    return assembly.process(application: assembly.application(
        name: "chorus-gateway", services: chorus.services + [assembly.security.audit],
        beforeServerStarts: {
            try await chorus.migrate()
            try await assembly.security.prepare(environment: environment)
        },
        onListening: onListening))
}

/// `chorus worker`: consumes the queues of some models (and the generic task queue), runs their
/// tasks, and any local model servers among them.
public func buildWorker(configuration: ChorusConfiguration, name: String, models requested: [String], logger: Logger) throws -> [any Service] {
    let known = Set(configuration.models.map(\.name))
    let models = requested.isEmpty ? configuration.models.map(\.name) : requested
    for model in models where !known.contains(model) {
        throw ConfigurationError(key: "--models", problem: "`\(model)` is not a configured model (configured: \(known.sorted().joined(separator: ", ")))")
    }
    let chorus = try DistributedChorus(configuration: configuration, logger: logger, localModels: Set(models))
    let worker = chorus.assembly.worker(id: name, models: models)
    let migrateThenWork = ClosureService {
        try await chorus.migrate()
        try await worker.run()
    }
    // `metrics.port`: a worker has no other listener, but records upstream calls and tokens too.
    let metrics = chorus.assembly.metricsListener().map { [$0] } ?? []
    return chorus.services + (chorus.assembly.models.supervisors as [any Service]) + metrics + [migrateThenWork]
}

/// The distributed shape's parts: PostgreSQL (the source of truth), Redis (the queues, the event
/// bus, the shared rate limits and the accounts version), and the assembly on top of them.
public struct DistributedChorus: Sendable {
    public let backend: PostgresBackend
    public let redis: RedisClient
    public let clients: UpstreamClients
    public let assembly: ChorusAssembly
    /// Breaker changes shared with every gateway and worker.
    let breakerBoard: RedisBreakerBoard
    let logger: Logger

    /// Services that must run for the parts to work, in start order.
    public var services: [any Service] {
        let clients = self.clients
        return [
            backend, redis, ClosureService { try? await gracefulShutdown(); try await clients.shutdown() },
            breakerBoard, assembly.models.healthProber(clients: clients), assembly.usage,
        ]
    }

    /// - Parameter localModels: the `local` models whose servers this process runs (nil: all).
    public init(configuration: ChorusConfiguration, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment, localModels: Set<String>? = nil) throws {
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
        let clients = UpstreamClients(configuration: configuration)
        var modelConfigurations = configuration.models
        if let localModels {
            modelConfigurations = modelConfigurations.filter { $0.local == nil || localModels.contains($0.name) }
        }
        let models = ModelRegistry(models: modelConfigurations, clients: clients, environment: environment, logger: logger)
        let prefix = configuration.redis.prefix
        self.breakerBoard = RedisBreakerBoard(redis: redis, prefix: prefix, deployments: models.deployments, logger: logger)
        models.useBreakerBoard(breakerBoard)
        // Gateways cache resolved credentials; every change to accounts, on any gateway or worker,
        // replaces the version in Redis, so a revocation holds on the next request everywhere.
        let security = Security(
            configuration: configuration, backend: backend, limiter: RedisRateLimiter(redis: redis, prefix: prefix),
            accountsVersion: RedisAccountsVersion(redis: redis, prefix: prefix), cacheCredentials: true, logger: logger)
        self.backend = backend
        self.redis = redis
        self.clients = clients
        self.assembly = ChorusAssembly(
            configuration: configuration, backend: backend, models: models,
            queue: RedisTaskQueue(redis: redis, prefix: prefix, logger: logger),
            bus: RedisEventBus(redis: redis, prefix: prefix, logger: logger), security: security,
            cache: RedisResponseCacheStore(redis: redis, prefix: prefix), slots: RedisBatchSlots(redis: redis, prefix: prefix),
            logger: logger)
        assembly.engine.metrics.sampleWhenScraped { metrics in
            let usage = redis.usage
            metrics.set("chorus_redis_connections_in_use", [("kind", "shared")], to: usage.sharedOpen)
            metrics.set("chorus_redis_connections_max", [("kind", "shared")], to: usage.sharedMaximum)
            metrics.set("chorus_redis_connections_in_use", [("kind", "dedicated")], to: usage.dedicatedLeased)
            metrics.set("chorus_redis_connections_open", [("kind", "dedicated")], to: usage.dedicatedOpen)
            metrics.set("chorus_redis_connections_waiting", [("kind", "dedicated")], to: usage.dedicatedWaiting)
            metrics.set("chorus_redis_connections_max", [("kind", "dedicated")], to: usage.dedicatedMaximum)
        }
        self.logger = logger
    }

    /// Applies pending migrations (safe when several processes start at once).
    public func migrate() async throws {
        try await Migrator(backend: backend, logger: logger).migrate()
    }
}
