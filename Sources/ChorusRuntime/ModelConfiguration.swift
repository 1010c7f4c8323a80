public import ChorusCore
public import ChorusProviders
import ChorusStore

/// One entry of the model table.
public struct ModelConfiguration: Sendable, Equatable {
    public enum Provider: String, Sendable, CaseIterable {
        case openai
        case local
        /// Google's Gemini API, natively (`generateContent`).
        case gemini
    }

    public var name: String
    public var provider: Provider
    /// The OpenAI-compatible base URL ending in `/v1` (unused for `local`, which picks a port); for
    /// `gemini`, the API's base ending in `/v1beta`.
    public var baseURL: String?
    /// The environment variable holding the API key; the key itself never sits in the file.
    public var apiKeyEnv: String?
    /// The model name sent upstream.
    public var upstreamModel: String
    public var timeouts: ModelTimeouts
    public var ownedBy: String
    /// Call the upstream with streaming even for non-streamed requests, so the first-token and
    /// between-token timeouts apply and a partial answer survives a failure. `false` forwards
    /// non-streamed requests as they are (then only the connect and total timeouts apply).
    public var upstreamStreaming = true
    /// Retries of a call that failed before its first token (5xx, 429, connection errors,
    /// first-token timeouts), with exponential backoff from `retryBackoffSeconds` and jitter.
    public var retries = 2
    public var retryBackoffSeconds = 0.25
    /// For `local`: how to run llama.cpp's server.
    public var local: LocalModelSettings?

    /// Servers that serve this model alike. Empty: the flat keys (`base_url`, `api_key_env`,
    /// `upstream_model`) are its one deployment (see `resolvedDeployments`).
    public var deployments: [Deployment] = []
    /// nil: the default breaker where there is somewhere else to go (several deployments or
    /// fallbacks); none for a lone deployment, where opening it would only turn errors into 503s.
    public var breaker: Breaker?
    /// Models tried in order when every deployment of this one failed before its first token.
    public var fallbacks: [String] = []
    /// Other names this model answers to (listed by `GET /v1/models`).
    public var aliases: [String] = []
    /// How many requests may wait for a free deployment, and for how long, before a 429.
    public var queue = Queue()
    /// Opt-in response cache; nil: only requests that ask for it are cached.
    public var cache: Cache?
    /// Regular expressions that mark a finished answer as a refusal (`metadata.refused`).
    public var refusalPatterns: [String] = []
    /// Dollars per million tokens, for `GET /v1/usage`'s cost.
    public var price: Price?

    public struct Deployment: Sendable, Equatable {
        public var baseURL: String
        public var apiKeyEnv: String?
        public var upstreamModel: String
        /// Share of new requests, relative to the other deployments.
        public var weight: Double = 1
        /// Calls in flight at once (per process); nil: no limit.
        public var maxConcurrency: Int?
        /// Polled every `healthIntervalSeconds`; a non-2xx answer takes the deployment out of rotation.
        public var healthURL: String?
        public var healthIntervalSeconds: Double = 5

        public init(baseURL: String, apiKeyEnv: String?, upstreamModel: String) {
            self.baseURL = baseURL
            self.apiKeyEnv = apiKeyEnv
            self.upstreamModel = upstreamModel
        }
    }

    /// The circuit breaker of each deployment.
    public struct Breaker: Sendable, Equatable {
        /// Consecutive failures that open it; after `cooldownSeconds` one probe call may go.
        public var failures = 5
        public var cooldownSeconds = 30.0
        public init() {}
    }

    public struct Queue: Sendable, Equatable {
        public var maxWaiting = 256
        public var maxWaitSeconds = 30.0
        public init() {}
    }

    public struct Cache: Sendable, Equatable {
        public var ttlSeconds: Double
        /// One entry for everyone instead of one per owner.
        public var shared = false
        /// Cache answers sampled with `temperature` > 0 too.
        public var anyTemperature = false
        public init(ttlSeconds: Double) { self.ttlSeconds = ttlSeconds }
    }

    public struct Price: Sendable, Equatable {
        public var promptPerMillion: Double
        public var completionPerMillion: Double
        public init(promptPerMillion: Double, completionPerMillion: Double) {
            self.promptPerMillion = promptPerMillion
            self.completionPerMillion = completionPerMillion
        }

        /// Dollars for `usage`.
        public func cost(_ usage: Usage) -> Double {
            (Double(usage.promptTokens) * promptPerMillion + Double(usage.completionTokens) * completionPerMillion) / 1_000_000
        }
    }

    /// The breaker each deployment gets (see `breaker`).
    public var effectiveBreaker: Breaker? {
        breaker ?? (resolvedDeployments.count > 1 || !fallbacks.isEmpty ? Breaker() : nil)
    }

    /// The deployments calls spread over: the listed ones, or the flat keys as one.
    public var resolvedDeployments: [Deployment] {
        if !deployments.isEmpty { return deployments }
        return [Deployment(baseURL: baseURL ?? "", apiKeyEnv: apiKeyEnv, upstreamModel: upstreamModel)]
    }

    public init(name: String, provider: Provider, baseURL: String?, apiKeyEnv: String?, upstreamModel: String, timeouts: ModelTimeouts, ownedBy: String, local: LocalModelSettings?) {
        self.name = name
        self.provider = provider
        self.baseURL = baseURL
        self.apiKeyEnv = apiKeyEnv
        self.upstreamModel = upstreamModel
        self.timeouts = timeouts
        self.ownedBy = ownedBy
        self.local = local
    }
}
