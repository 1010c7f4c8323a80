import AsyncHTTPClient
import ChorusCore
import ChorusProviders
import ChorusRuntime
import ChorusStore
import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOPosix
import SQLKit
import ServiceLifecycle

/// Assembles embedded Chorus (`chorus serve`): SQLite, the model table with its local model
/// servers, and the HTTP API, as one Hummingbird application.
///
/// Services start before the HTTP server and stop after it, in reverse order: the server drains,
/// then the local models stop, then the database closes, then the HTTP client shuts down.
public func buildServeApplication(
    configuration: ChorusConfiguration,
    logger: Logger,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    onListening: @escaping @Sendable (_ host: String, _ port: Int) async -> Void = { _, _ in }
) async throws -> some ApplicationProtocol {
    try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
    let sqliteFolder = (configuration.storage.sqlitePath as NSString).deletingLastPathComponent
    if !sqliteFolder.isEmpty {
        try FileManager.default.createDirectory(atPath: sqliteFolder, withIntermediateDirectories: true)
    }
    let backend = try await SQLiteBackend.open(path: configuration.storage.sqlitePath, logger: logger)
    try await Migrator(backend: backend, logger: logger).migrate()
    logger.info("database ready", metadata: ["sqlite": "\(configuration.storage.sqlitePath)"])

    let clients = makeUpstreamClients(configuration: configuration)
    let security = Security(configuration: configuration, backend: backend, limiter: InMemoryRateLimiter(), cacheCredentials: true, logger: logger)
    try await security.prepare(environment: environment)
    let parts = EmbeddedParts(configuration: configuration, backend: backend, clients: clients, security: security, environment: environment, logger: logger)
    let router = parts.router
    var services: [any Service] = [
        ShutdownService(name: "upstream-http-clients") { try await clients.shutdown() },
        ShutdownService(name: "database") { try await backend.close() },
        security.audit,
    ]
    services += parts.models.supervisors as [any Service]
    services.append(parts.worker)
    return Application(
        router: router,
        server: .chorusHTTP1(webSocketRouter: router, idleTimeoutSeconds: configuration.http.idleTimeoutSeconds),
        configuration: .init(address: .hostname(configuration.http.host, port: configuration.http.port), serverName: "chorus", backlog: configuration.http.backlog),
        services: services,
        onServerRunning: { channel in
            await onListening(configuration.http.host, channel.localAddress?.port ?? configuration.http.port)
        },
        logger: logger)
}

/// Embedded Chorus on an open database: the model table, the chat engine, and asynchronous work
/// through the in-process queue and event bus with one worker for every queue.
struct EmbeddedParts {
    let models: ModelRegistry
    let store: SQLConversationStore
    let taskStore: SQLTaskStore
    let queue: InProcessQueue
    let bus: InProcessEventBus
    let worker: TaskWorker
    let router: Router<ChorusRequestContext>

    init(configuration: ChorusConfiguration, backend: any SQLBackend, clients: UpstreamClients, security: Security, environment: [String: String], logger: Logger) {
        let models = ModelRegistry(models: configuration.models, clients: clients, environment: environment, logger: logger)
        let store = SQLConversationStore(backend: backend)
        let engine = ChatEngine(
            store: store, models: models, historyMessages: configuration.conversations.historyMessages,
            checkpointSeconds: configuration.conversations.checkpointSeconds,
            storeByDefault: configuration.conversations.store, logger: logger)
        let queue = InProcessQueue()
        let bus = InProcessEventBus()
        let taskStore = SQLTaskStore(backend: backend)
        let handlers: [any TaskHandler] = [ChatTaskHandler(engine: engine, accounts: security.accounts), ConversationExportHandler(store: store)]
        let taskService = TaskService(tasks: taskStore, conversations: store, queue: queue, bus: bus, models: models, handlers: handlers, logger: logger)
        self.models = models
        self.store = store
        self.taskStore = taskStore
        self.queue = queue
        self.bus = bus
        self.worker = TaskWorker(
            settings: workerSettings(configuration, id: "embedded", queues: models.names + [TaskService<SQLConversationStore>.genericQueue]),
            queue: queue, bus: bus, tasks: taskStore, handlers: handlers, logger: logger)
        self.router = buildRouter(engine: engine, models: models, configuration: configuration, tasks: taskService, database: backend.database, security: security)
    }
}

/// The worker settings from the configuration.
public func workerSettings(_ configuration: ChorusConfiguration, id: String, queues: [String]) -> WorkerSettings {
    var settings = WorkerSettings(id: id, queues: queues)
    settings.concurrency = configuration.tasks.concurrency
    settings.leaseMilliseconds = Int64(configuration.tasks.leaseSeconds * 1000)
    settings.maxAttempts = configuration.tasks.maxAttempts
    settings.eventRetentionSeconds = configuration.tasks.eventRetentionSeconds
    settings.requeueAfterMilliseconds = Int64(configuration.tasks.requeueAfterSeconds * 1000)
    return settings
}

/// The routes of the HTTP API, shared by every shape of Chorus.
func buildRouter<Store: ConversationStore>(
    engine: ChatEngine<Store>, models: ModelRegistry, configuration: ChorusConfiguration,
    tasks: TaskService<Store>, database: any SQLDatabase, security: Security
) -> Router<ChorusRequestContext> {
    let router = Router(context: ChorusRequestContext.self)
    router.middlewares.add(ChildTaskMiddleware())
    router.middlewares.add(APIMiddleware(corsOrigins: Set(configuration.http.corsOrigins)))
    router.middlewares.add(AuthMiddleware(
        accounts: configuration.auth.enabled ? security.accounts : nil, limiter: security.limiter, limits: configuration.limits,
        trustedProxies: Set(configuration.http.trustedProxies), audit: security.audit))
    router.get("healthz") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
    }
    var tasksController = TasksController(service: tasks, idempotency: Idempotency(tasks: tasks.tasks), maxBodyBytes: configuration.http.maxBodyBytes)
    tasksController.accounts = security.accounts
    let uploads = UploadsController(tasks: tasksController, maxFileBytes: configuration.files.maxBytes)
    var chat = ChatCompletionsController(engine: engine, maxBodyBytes: max(configuration.http.maxBodyBytes, configuration.files.maxBytes * 4), onDisconnect: configuration.conversations.onDisconnect)
    chat.uploads = uploads
    chat.accounts = security.accounts
    if configuration.auth.enabled {
        AuthController(accounts: security.accounts, maxBodyBytes: configuration.http.maxBodyBytes).addRoutes(to: router)
        AdminController(accounts: security.accounts).addRoutes(to: router)
    } else {
        router.get("/v1/auth/me", use: AuthController(accounts: security.accounts, maxBodyBytes: configuration.http.maxBodyBytes).me)
        router.get("/v1/admin/audit", use: AdminController(accounts: security.accounts).audit)
    }
    router.addRoutes(ModelsController(models: models).endpoints, atPath: "/v1/models")
    router.addRoutes(chat.endpoints, atPath: "/v1")
    router.addRoutes(ConversationsController(store: engine.store, maxBodyBytes: configuration.http.maxBodyBytes).endpoints, atPath: "/v1/conversations")
    tasksController.addRoutes(to: router)
    uploads.addRoutes(to: router)
    OperationsController(service: tasks, database: database, queues: models.names + [TaskService<Store>.genericQueue]).addRoutes(to: router)
    return router
}

/// Accounts, rate limits and the audit log, as one shape of Chorus needs them.
public struct Security: Sendable {
    public let accounts: AuthService
    public let limiter: any RateLimiter
    public let audit: AuditLog
    let enabled: Bool
    let logger: Logger

    /// - Parameters:
    ///   - accountsVersion: what every change to accounts advances, and what cached credentials
    ///     are checked against: this process's counter for `chorus serve` (the database's only
    ///     writer of accounts), Redis for gateways and workers.
    ///   - cacheCredentials: keep resolved credentials in memory (valid while the version holds).
    public init(
        configuration: ChorusConfiguration, backend: any SQLBackend, limiter: any RateLimiter,
        accountsVersion: any AccountsVersion = LocalAccountsVersion(), cacheCredentials: Bool = false, logger: Logger
    ) {
        let store = SQLAuthStore(backend: backend, version: accountsVersion)
        self.accounts = AuthService(
            store: store, configuration: configuration.auth, limits: configuration.limits, limiter: limiter,
            cacheCredentials: cacheCredentials, logger: logger)
        self.limiter = limiter
        self.audit = AuditLog(store: store, logger: logger)
        self.enabled = configuration.auth.enabled
        self.logger = logger
    }

    /// Built-in roles, the first administrator, and the warning when accounts are off. Call after migrating.
    public func prepare(environment: [String: String]) async throws {
        try await accounts.prepare(environment: environment) { line in
            // Straight to the terminal, never through the logger (a password must not reach log files).
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        if !enabled {
            let warning = "WARNING: authentication is disabled (auth.enabled: false): anyone who can reach this server has full access to it"
            FileHandle.standardOutput.write(Data((warning + "\n").utf8))
            logger.warning("\(warning)")
        }
    }
}

/// Long-lived clients for every upstream, with connection reuse. Streams hold a connection
/// each, so the per-host limit is high; the connect timeout is the largest any model allows (each
/// model's own is enforced per request).
func makeUpstreamClients(configuration: ChorusConfiguration) -> UpstreamClients {
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.connectionPool = .init(idleTimeout: .milliseconds(Int64(configuration.upstream.idleConnectionSeconds * 1000)))
    let connect = configuration.models.map(\.timeouts.connect).max() ?? 10
    clientConfiguration.timeout = .init(connect: .milliseconds(Int64(connect * 1000)))
    clientConfiguration.decompression = .disabled
    return UpstreamClients(configuration: clientConfiguration, maxConnectionsPerHost: configuration.upstream.maxConnectionsPerHost)
}

/// Runs `onShutdown` when the service group shuts down: for resources that only need closing.
struct ShutdownService: Service {
    let name: String
    let onShutdown: @Sendable () async throws -> Void

    func run() async throws {
        try? await gracefulShutdown()
        try await onShutdown()
    }
}
