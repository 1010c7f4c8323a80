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
    /// The API key the turn was asked with (usage by key).
    public var apiKeyID: String?
    /// Whether and how the answer is cached.
    public var cache: CachePolicy?
    /// The route whose model answered (a fallback's, or this turn's own before any answer).
    var servingRoute: ModelRoute {
        ([route] + fallbacks).first { $0.name == servedBy.current?.model } ?? route
    }

    /// The same turn answered by the fallbacks after the one that served it (a task whose
    /// answer was a refusal tries the next); nil when none is left.
    public func fallingBack() -> PreparedTurn? {
        guard let served = servedBy.current?.model,
              let position = ([route] + fallbacks).firstIndex(where: { $0.name == served }),
              position + 1 < fallbacks.count + 1 else { return nil }
        let rest = Array(fallbacks[position...])
        var next = PreparedTurn(
            requestID: requestID, ownerID: ownerID, model: model, route: rest[0], fallbacks: Array(rest.dropFirst()),
            affinity: affinity, upstreamStreaming: upstreamStreaming, conversation: conversation, upstream: upstream,
            assistantMessageID: assistantMessageID, startedAt: startedAt)
        next.apiKeyID = apiKeyID
        next.gate = gate
        next.servedBy.refusedBy = servedBy.refusedBy + [served]
        return next
    }

    /// A task run begun before its claim: every write of the answer waits for the claim's outcome.
    var gate: RunGate?
}
