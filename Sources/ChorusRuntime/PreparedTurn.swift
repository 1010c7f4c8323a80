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
    /// The model asked for (an alias resolved to its name).
    public let model: String
    public let route: ModelRoute
    /// Tried in order when every deployment of `route` failed before the first token.
    public let fallbacks: [ModelRoute]
    /// Keeps a conversation's turns on one deployment (its server-side prompt cache stays warm).
    public let affinity: String?
    public let upstreamStreaming: Bool
    /// Where the answer is stored; nil when nothing is (`store: false`).
    public let conversation: Conversation?
    public let upstream: UpstreamRequest
    public let assistantMessageID: String
    public let startedAt: Int64
    /// Which model and deployment answered.
    public let servedBy = ServedBy()
    /// A task run begun before its claim: every write of the answer waits for the claim's outcome.
    var gate: RunGate?
}
