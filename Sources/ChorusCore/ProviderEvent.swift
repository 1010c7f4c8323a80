/// What the upstream says about the response as a whole (OpenAI's `system_fingerprint` and
/// `service_tier`), repeated on every chunk it sends.
public struct ResponseMetadata: Sendable, Equatable {
    public var systemFingerprint: String?
    public var serviceTier: String?

    public init(systemFingerprint: String? = nil, serviceTier: String? = nil) {
        self.systemFingerprint = systemFingerprint
        self.serviceTier = serviceTier
    }

    public var isEmpty: Bool { systemFingerprint == nil && serviceTier == nil }
}

/// What a provider yields while a completion is produced.
public enum ProviderEvent: Sendable, Equatable {
    /// Thinking text (upstream `reasoning_content`, or text inside `<think>` tags).
    case reasoning(String)
    /// Answer text.
    case content(String)
    /// Refusal text (OpenAI's `refusal`: the model declined, in place of an answer).
    case refusal(String)
    /// One chunk's `delta.tool_calls` as the upstream sent it: `[{index, id?, type?, function:
    /// {name?, arguments?}}]`, the arguments in fragments. Relayed as they are; `ToolCall.assemble`
    /// joins them for a whole message.
    case toolCalls(JSONValue)
    /// One chunk's `logprobs` (`{content, refusal}`), when the request asked for them.
    case logprobs(JSONValue)
    /// `system_fingerprint` / `service_tier`, when first seen or changed.
    case metadata(ResponseMetadata)
    /// The upstream's finish reason (`stop`, `length`, `tool_calls`, …).
    case finish(String)
    /// Token usage reported by the upstream.
    case usage(Usage)
}
