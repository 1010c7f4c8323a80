public import Logging

/// How a fake upstream listens and what it answers by default.
public struct FakeUpstreamConfiguration: Sendable {
    /// Address to bind.
    public var host: String
    /// Port to bind; 0 picks any free port (learn it through `onServerRunning`).
    public var port: Int
    /// Answer tokens when a request does not say `tokens=N`.
    public var defaultTokenCount: Int
    /// Tokens per second when a request does not say `rate=R`; 0 sends as fast as possible.
    public var defaultTokensPerSecond: Double
    /// Model name reported by `/v1/models` and used when a request names none.
    public var defaultModel: String
    /// Level of the fake's own log, written to standard error.
    public var logLevel: Logger.Level
    /// The key the Gemini mode requires in `x-goog-api-key`; nil requires none.
    public var apiKey: String?

    public init(
        host: String = "127.0.0.1",
        port: Int = 0,
        defaultTokenCount: Int = 8,
        defaultTokensPerSecond: Double = 0,
        defaultModel: String = "fake-model",
        logLevel: Logger.Level = .info,
        apiKey: String? = nil
    ) {
        self.apiKey = apiKey
        self.host = host
        self.port = port
        self.defaultTokenCount = defaultTokenCount
        self.defaultTokensPerSecond = defaultTokensPerSecond
        self.defaultModel = defaultModel
        self.logLevel = logLevel
    }
}
