public import ChorusCore
public import ChorusProviders
public import Logging

/// The model table: a model name (or alias) to its route — the deployments that serve it — and
/// the models it falls back to.
public struct ModelRegistry: Sendable {
    public struct Entry: Sendable {
        public let configuration: ModelConfiguration
        public let route: ModelRoute
        /// `fallbacks`, in order (names that are not in the table are left out at load).
        public let fallbacks: [ModelRoute]

        /// Throws for a request the model is known not to serve (see `ChatProvider.check`).
        public func check(_ request: UpstreamRequest) throws {
            try route.deployments.first?.provider.check(request)
        }
    }

    private let entries: [String: Entry]
    /// Configuration order, for `GET /v1/models`.
    public let names: [String]
    /// The local model servers Chorus must run (each a `Service`).
    public let supervisors: [LocalModelSupervisor]
    /// When the table was built (the `created` of model listings).
    public let created: Int
    /// Every deployment of every model, in table order.
    public let deployments: [Deployment]
    private let board = BreakerBoardSlot()

    public init(models: [ModelConfiguration], clients: UpstreamClients, environment: [String: String], logger: Logger) {
        var routes: [String: ModelRoute] = [:]
        var supervisors: [LocalModelSupervisor] = []
        for model in models {
            var deployments: [Deployment] = []
            for (index, settings) in model.resolvedDeployments.enumerated() {
                let endpoint: any UpstreamEndpoint
                if let local = model.local {
                    let supervisor = LocalModelSupervisor(settings: local, clients: clients, logger: logger)
                    supervisors.append(supervisor)
                    endpoint = supervisor
                } else {
                    endpoint = FixedEndpoint(settings.baseURL)
                }
                let apiKey = settings.apiKeyEnv.flatMap { environment[$0] }
                if let variable = settings.apiKeyEnv, apiKey == nil {
                    logger.warning("API key variable is not set; calls go without a key", metadata: ["model": "\(model.name)", "api_key_env": "\(variable)"])
                }
                let provider: any ChatProvider = model.provider == .gemini
                    ? GeminiProvider(
                        endpoint: endpoint, upstreamModel: settings.upstreamModel, apiKey: apiKey,
                        timeouts: model.timeouts, clients: clients, logger: logger)
                    : OpenAICompatibleProvider(
                        endpoint: endpoint, upstreamModel: settings.upstreamModel, apiKey: apiKey,
                        timeouts: model.timeouts, clients: clients, logger: logger)
                deployments.append(Deployment(model: model.name, index: index, settings: settings, breaker: model.effectiveBreaker, provider: provider))
            }
            routes[model.name] = ModelRoute(configuration: model, deployments: deployments, board: board)
        }
        var entries: [String: Entry] = [:]
        for model in models {
            let entry = Entry(configuration: model, route: routes[model.name]!, fallbacks: model.fallbacks.compactMap { routes[$0] })
            entries[model.name] = entry
            for alias in model.aliases where routes[alias] == nil { entries[alias] = entry }
        }
        self.entries = entries
        self.names = models.map(\.name)
        self.supervisors = supervisors
        self.deployments = models.flatMap { routes[$0.name]!.deployments }
        self.created = Int(nowMilliseconds() / 1000)
    }

    public subscript(name: String) -> Entry? { entries[name] }

    /// The polling of deployments' health URLs, for the shape to run.
    public func healthProber(clients: UpstreamClients) -> HealthProber {
        HealthProber(deployments: deployments, clients: clients)
    }

    /// Shares breaker changes with other processes from now on.
    public func useBreakerBoard(_ board: any BreakerBoard) {
        self.board.board = board
    }

    /// Models, then their aliases (an alias lists as a model of its own, as LiteLLM does).
    public var listings: [ModelListing] {
        names.compactMap { entries[$0] }.flatMap { entry in
            ([entry.configuration.name] + entry.configuration.aliases).map {
                ModelListing(id: $0, created: created, ownedBy: entry.configuration.ownedBy)
            }
        }
    }
}
