public import ChorusCore
public import ChorusRuntime
public import ChorusStore
public import Hummingbird
import NIOCore
public import SQLKit

/// The routes of the HTTP API, shared by every shape of Chorus.
public func buildRouter<Store: ConversationStore>(
    engine: ChatEngine<Store>, models: ModelRegistry, configuration: ChorusConfiguration,
    tasks: TaskService<Store>, database: any SQLDatabase, security: Security,
    usage: (writer: BufferedWriter<UsageRecord>, store: SQLUsageStore)? = nil, drain: ShutdownDrain? = nil
) -> Router<ChorusRequestContext> {
    let router = Router(context: ChorusRequestContext.self)
    router.middlewares.add(MetricsMiddleware(metrics: engine.metrics))
    // Spans only when traces are exported: off, a request pays for no span at all.
    if configuration.tracing.enabled {
        router.middlewares.add(TracingMiddleware(redactingQueryParameters: ["token", "access_token", "key", "api_key"]))
    }
    router.middlewares.add(ChildTaskMiddleware())
    router.middlewares.add(APIMiddleware(corsOrigins: Set(configuration.http.corsOrigins)))
    if let drain { router.middlewares.add(DrainMiddleware(drain: drain)) }
    router.middlewares.add(AuthMiddleware(
        accounts: configuration.auth.enabled ? security.accounts : nil, limiter: security.limiter, limits: configuration.limits,
        trustedProxies: Set(configuration.http.trustedProxies), audit: security.audit,
        metricsScrapeToken: configuration.metrics.scrapeToken))
    let routeMethods = RouteMethods()
    router.middlewares.add(MethodNotAllowedMiddleware(routes: routeMethods))
    let web = WebController(assets: .shared)
    web.addRoutes(to: router)
    OpenAPIController(web: web).addRoutes(to: router)
    router.get("healthz") { _, _ in
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
    }
    var tasksController = TasksController(
        service: tasks, idempotency: Idempotency(tasks: tasks.tasks), maxBodyBytes: configuration.http.maxBodyBytes, metrics: engine.metrics)
    tasksController.accounts = security.accounts
    let uploads = UploadsController(tasks: tasksController, maxFileBytes: configuration.files.maxBytes)
    var chat = ChatCompletionsController(engine: engine, maxBodyBytes: max(configuration.http.maxBodyBytes, configuration.files.maxBytes * 4), onDisconnect: configuration.conversations.onDisconnect)
    chat.uploads = uploads
    chat.accounts = security.accounts
    chat.drain = drain
    if configuration.auth.enabled {
        AuthController(accounts: security.accounts, maxBodyBytes: configuration.http.maxBodyBytes).addRoutes(to: router)
        AdminController(accounts: security.accounts).addRoutes(to: router)
    } else {
        router.get("/v1/auth/me", use: AuthController(accounts: security.accounts, maxBodyBytes: configuration.http.maxBodyBytes).me)
        router.get("/v1/admin/audit", use: AdminController(accounts: security.accounts).audit)
    }
    router.addRoutes(ModelsController(models: models).endpoints, atPath: "/v1/models")
    router.addRoutes(chat.endpoints, atPath: "/v1")
    // Seed 002's path for the same endpoint (its clients post there unchanged).
    router.addRoutes(chat.endpoints, atPath: "/api")
    router.addRoutes(ConversationsController(store: engine.store, maxBodyBytes: configuration.http.maxBodyBytes).endpoints, atPath: "/v1/conversations")
    tasksController.addRoutes(to: router)
    var skillSpace = SkillSpaceController(
        engine: engine, service: tasks, model: configuration.skillSpace.model, maxBodyBytes: configuration.http.maxBodyBytes,
        onDisconnect: configuration.conversations.onDisconnect)
    skillSpace.accounts = security.accounts
    skillSpace.drain = drain
    skillSpace.addRoutes(to: router)
    uploads.addRoutes(to: router)
    let queues = metricsQueues(models: models, tasks: tasks)
    MetricsController(metrics: engine.metrics, tasks: tasks, queues: queues).addRoutes(to: router)
    OperationsController(service: tasks, database: database, queues: queues, drain: drain).addRoutes(to: router)
    DeploymentsController(models: models).addRoutes(to: router)
    if let usage { UsageController(writer: usage.writer, store: usage.store).addRoutes(to: router) }
    DeadLettersController(service: tasks).addRoutes(to: router)
    // Last, once every route is added.
    routeMethods.set(router.routes)
    return router
}

/// `metrics.port`'s listener: `GET /metrics` alone, without credentials (whoever reaches the port
/// may scrape; it is bound to `http.host`).
public func buildMetricsRouter<Store: ConversationStore>(metrics: ChorusMetrics, models: ModelRegistry, tasks: TaskService<Store>) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    MetricsController(metrics: metrics, tasks: tasks, queues: metricsQueues(models: models, tasks: tasks)).addRoutes(to: router)
    return router
}

/// Every queue: the models', the generic task queue and the command queue.
private func metricsQueues<Store: ConversationStore>(models: ModelRegistry, tasks: TaskService<Store>) -> [String] {
    models.names + [TaskService<Store>.genericQueue, CommandTaskHandler.queueName]
}
