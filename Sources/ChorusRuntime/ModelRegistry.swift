public import ChorusCore
public import ChorusProviders
public import Logging

/// The model table: a model name to the provider that serves it.
public struct ModelRegistry: Sendable {
    public struct Entry: Sendable {
        public let configuration: ModelConfiguration
        public let provider: any ChatProvider
    }

    private let entries: [String: Entry]
    /// Configuration order, for `GET /v1/models`.
    public let names: [String]
    /// The local model servers Chorus must run (each a `Service`).
    public let supervisors: [LocalModelSupervisor]
    /// When the table was built (the `created` of model listings).
    public let created: Int

    public init(models: [ModelConfiguration], clients: UpstreamClients, environment: [String: String], logger: Logger) {
        var entries: [String: Entry] = [:]
        var supervisors: [LocalModelSupervisor] = []
        for model in models {
            let endpoint: any UpstreamEndpoint
            if let local = model.local {
                let supervisor = LocalModelSupervisor(settings: local, clients: clients, logger: logger)
                supervisors.append(supervisor)
                endpoint = supervisor
            } else {
                endpoint = FixedEndpoint(model.baseURL ?? "")
            }
            let apiKey = model.apiKeyEnv.flatMap { environment[$0] }
            if let variable = model.apiKeyEnv, apiKey == nil {
                logger.warning("API key variable is not set; calls go without a key", metadata: ["model": "\(model.name)", "api_key_env": "\(variable)"])
            }
            let provider: any ChatProvider = model.provider == .gemini
                ? GeminiProvider(endpoint: endpoint, upstreamModel: model.upstreamModel, apiKey: apiKey, timeouts: model.timeouts, clients: clients, logger: logger)
                : OpenAICompatibleProvider(
                    endpoint: endpoint, upstreamModel: model.upstreamModel, apiKey: apiKey,
                    timeouts: model.timeouts, clients: clients, logger: logger)
            entries[model.name] = Entry(configuration: model, provider: provider)
        }
        self.entries = entries
        self.names = models.map(\.name)
        self.supervisors = supervisors
        self.created = Int(nowMilliseconds() / 1000)
    }

    public subscript(name: String) -> Entry? { entries[name] }

    public var listings: [ModelListing] {
        names.compactMap { entries[$0] }.map { ModelListing(id: $0.configuration.name, created: created, ownedBy: $0.configuration.ownedBy) }
    }
}
