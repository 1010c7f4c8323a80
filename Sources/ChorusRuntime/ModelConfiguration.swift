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
