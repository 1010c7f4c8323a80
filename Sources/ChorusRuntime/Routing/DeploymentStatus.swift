/// A deployment as `GET /v1/admin/deployments` shows it.
public struct DeploymentStatus: Sendable, Encodable {
    public let model: String
    public let key: String
    public let baseURL: String
    public let upstreamModel: String
    public let weight: Double
    public let maxConcurrency: Int?
    /// `closed`, `open`, `half_open`, or `unhealthy` (its health URL fails).
    public let state: String
    public let inFlight: Int
    public let consecutiveFailures: Int
    /// While open: when the next probe may go (Unix seconds).
    public let openUntil: Double?
    /// Calls that ended in the last five minutes, and the share of them the deployment failed.
    public let recentCalls: Int
    public let recentErrorRate: Double
    public let latencyP50Seconds: Double?

    enum CodingKeys: String, CodingKey {
        case model, key, weight, state
        case baseURL = "base_url"
        case upstreamModel = "upstream_model"
        case maxConcurrency = "max_concurrency"
        case inFlight = "in_flight"
        case consecutiveFailures = "consecutive_failures"
        case openUntil = "open_until"
        case recentCalls = "recent_calls"
        case recentErrorRate = "recent_error_rate"
        case latencyP50Seconds = "latency_p50_seconds"
    }
}
