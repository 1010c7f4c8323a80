public import ChorusCore
public import ChorusHTTP
import ChorusProviders
public import ChorusRuntime
public import ChorusStore
public import Hummingbird
public import Logging
public import ServiceLifecycle

/// The parts of Chorus that every shape builds the same way on its own database, queue and event
/// bus: the chat engine, the task handlers, the task service, workers and the HTTP routes.
/// `chorus serve`, `chorus gateway`, `chorus worker` and the tests all assemble Chorus here.
public struct ChorusAssembly: Sendable {
    public let configuration: ChorusConfiguration
    public let backend: any SQLBackend
    public let models: ModelRegistry
    public let security: Security
    public let store: SQLConversationStore
    public let engine: ChatEngine<SQLConversationStore>
    public let handlers: [any TaskHandler]
    public let tasks: TaskService<SQLConversationStore>
    /// Each turn's usage, written in batches (a service the shape runs).
    public let usage: BufferedWriter<UsageRecord>
    /// The first phase of a graceful stop: refuses new work, lets streams finish or cuts them.
    public let drain: ShutdownDrain
    let logger: Logger

    /// - Parameter cache: where cached answers live (nil: the database's `response_cache` table).
    /// - Parameter slots: how a batch's concurrency cap is shared (nil: in this process).
    public init(
        configuration: ChorusConfiguration, backend: any SQLBackend, models: ModelRegistry, queue: any TaskQueue,
        bus: any TaskEventBus, security: Security, cache: (any ResponseCacheStore)? = nil, slots: (any BatchSlots)? = nil,
        logger: Logger
    ) {
        let store = SQLConversationStore(backend: backend)
        let usageStore = SQLUsageStore(backend: backend)
        let usage = BufferedWriter<UsageRecord>("usage records", logger: logger) { records in try await usageStore.append(records) }
        let metrics = ChorusMetrics(enabled: configuration.metrics.enabled)
        metrics.sampleWhenScraped { metrics in
            for pool in backend.pools {
                metrics.set("chorus_db_connections_in_use", [("pool", pool.pool)], to: pool.inUse)
                metrics.set("chorus_db_connections_waiting", [("pool", pool.pool)], to: pool.waiting)
                metrics.set("chorus_db_connections_max", [("pool", pool.pool)], to: pool.maximum)
            }
        }
        let engine = ChatEngine(
            store: store, models: models, historyMessages: configuration.conversations.historyMessages,
            checkpointSeconds: configuration.conversations.checkpointSeconds,
            storeByDefault: configuration.conversations.store,
            metrics: metrics, usage: usage,
            cache: cache ?? SQLResponseCacheStore(backend: backend), logger: logger)
        self.usage = usage
        self.drain = ShutdownDrain(graceSeconds: configuration.shutdown.graceSeconds)
        let handlers: [any TaskHandler] = [
            ChatTaskHandler(engine: engine, accounts: security.accounts, slots: slots ?? InProcessBatchSlots()),
            ConversationExportHandler(store: store),
            CommandTaskHandler(
                commands: configuration.tasks.commands, tasks: SQLTaskStore(backend: backend),
                outputRoot: configuration.dataDirectory + "/jobs", artifactMaxBytes: configuration.tasks.artifactMaxBytes, logger: logger),
        ]
        self.configuration = configuration
        self.backend = backend
        self.models = models
        self.security = security
        self.store = store
        self.engine = engine
        self.handlers = handlers
        self.tasks = TaskService(
            tasks: SQLTaskStore(backend: backend), conversations: store, queue: queue, bus: bus, models: models,
            handlers: handlers, logger: logger)
        self.logger = logger
    }

    /// A worker that serves the queues of `models`, the generic task queue and the command queue.
    public func worker(id: String, models: [String]) -> TaskWorker {
        var settings = WorkerSettings(id: id, queues: models + [TaskService<SQLConversationStore>.genericQueue, CommandTaskHandler.queueName])
        settings.concurrency = configuration.tasks.concurrency
        settings.leaseMilliseconds = Int64(configuration.tasks.leaseSeconds * 1000)
        settings.maxAttempts = configuration.tasks.maxAttempts
        settings.eventRetentionSeconds = configuration.tasks.eventRetentionSeconds
        settings.requeueAfterMilliseconds = Int64(configuration.tasks.requeueAfterSeconds * 1000)
        return TaskWorker(settings: settings, queue: tasks.queue, bus: tasks.bus, tasks: tasks.tasks, handlers: handlers, logger: logger)
    }

    /// Every route of the HTTP API (the tests walk it against the OpenAPI document).
    public func router() -> Router<ChorusRequestContext> {
        buildRouter(
            engine: engine, models: models, configuration: configuration, tasks: tasks, database: backend.database,
            security: security, usage: (usage, SQLUsageStore(backend: backend)), drain: drain)
    }

    /// `application` stopped in phases: the drain first (see `ChorusProcess`).
    public func process(application: some ApplicationProtocol) -> ChorusProcess {
        ChorusProcess(application: application, drain: drain, metricsListener: metricsListener(), logger: logger)
    }

    /// With `metrics.port`: a listener of its own on `http.host` that serves only `/metrics`,
    /// without credentials, for a Prometheus that should reach nothing else.
    public func metricsListener() -> (any Service)? {
        guard let port = configuration.metrics.port, configuration.metrics.enabled else { return nil }
        let host = configuration.http.host
        let logger = self.logger
        return Application(
            router: buildMetricsRouter(metrics: engine.metrics, models: models, tasks: tasks),
            configuration: .init(address: .hostname(host, port: port), serverName: "chorus-metrics"),
            onServerRunning: { _ in logger.info("metrics listening", metadata: ["address": "\(host):\(port)"]) },
            logger: logger)
    }

    /// The HTTP API, served with the configured listener, backlog and idle timeout.
    public func application(
        name: String, services: [any Service], beforeServerStarts: (@Sendable () async throws -> Void)? = nil,
        onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void
    ) -> some ApplicationProtocol {
        let router = self.router()
        let http = configuration.http
        var app = Application(
            router: router,
            server: .chorusHTTP1(webSocketRouter: router, idleTimeoutSeconds: http.idleTimeoutSeconds),
            configuration: .init(address: .hostname(http.host, port: http.port), serverName: name, backlog: http.backlog),
            services: services,
            onServerRunning: { channel in await onListening(http.host, channel.localAddress?.port ?? http.port) },
            logger: logger)
        if let beforeServerStarts { app.beforeServerStarts(perform: beforeServerStarts) }
        return app
    }
}
