public import ChorusCore
public import ChorusProviders
import ChorusStore
import Logging
import Metrics
import Synchronization

/// A turn whose user message is committed and whose upstream request is built.
public struct PreparedTurn: Sendable {
    public let requestID: String
    public let ownerID: String
    public let model: String
    public let provider: any ChatProvider
    public let upstreamStreaming: Bool
    public let retries: Int
    public let retryBackoffSeconds: Double
    /// Where the answer is stored; nil when nothing is (`store: false`).
    public let conversation: Conversation?
    public let upstream: UpstreamRequest
    public let assistantMessageID: String
    public let startedAt: Int64
    /// A task run begun before its claim: every write of the answer waits for the claim's outcome.
    var gate: RunGate?
}
