/// Token counts, as OpenAI's `CompletionUsage`.
public struct Usage: Sendable, Equatable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }
    /// `prompt_tokens_details` and `completion_tokens_details` (cached and reasoning tokens, …) as
    /// the upstream reported them: returned to the client, not stored.
    public var promptTokensDetails: JSONValue?
    public var completionTokensDetails: JSONValue?

    public init(promptTokens: Int, completionTokens: Int, promptTokensDetails: JSONValue? = nil, completionTokensDetails: JSONValue? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.promptTokensDetails = promptTokensDetails
        self.completionTokensDetails = completionTokensDetails
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
        case promptTokensDetails = "prompt_tokens_details", completionTokensDetails = "completion_tokens_details"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try c.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        completionTokens = try c.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
        promptTokensDetails = try c.decodeIfPresent(JSONValue.self, forKey: .promptTokensDetails)
        completionTokensDetails = try c.decodeIfPresent(JSONValue.self, forKey: .completionTokensDetails)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
        try c.encodeIfPresent(promptTokensDetails, forKey: .promptTokensDetails)
        try c.encodeIfPresent(completionTokensDetails, forKey: .completionTokensDetails)
    }

    /// The usage as OpenAI's JSON object.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "prompt_tokens": .int(promptTokens), "completion_tokens": .int(completionTokens), "total_tokens": .int(totalTokens),
        ]
        if let promptTokensDetails { object["prompt_tokens_details"] = promptTokensDetails }
        if let completionTokensDetails { object["completion_tokens_details"] = completionTokensDetails }
        return .object(object)
    }

    func write(to json: inout JSONWriter) {
        json.beginObject()
        json.key("prompt_tokens"); json.int(promptTokens)
        json.key("completion_tokens"); json.int(completionTokens)
        json.key("total_tokens"); json.int(totalTokens)
        if let promptTokensDetails { json.key("prompt_tokens_details"); json.value(promptTokensDetails) }
        if let completionTokensDetails { json.key("completion_tokens_details"); json.value(completionTokensDetails) }
        json.endObject()
    }
}

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

/// A finished (or interrupted) completion, as accumulated from provider events.
public struct CompletionOutput: Sendable, Equatable {
    public var content: String = ""
    public var reasoning: String = ""
    public var refusal: String?
    public var toolCalls: [ToolCall] = []
    /// The `content` and `refusal` token entries of the chunks' `logprobs`, nil when none came.
    public var logprobs: (content: [JSONValue], refusal: [JSONValue])?
    public var metadata = ResponseMetadata()
    public var finishReason: String?
    public var usage: Usage?

    public init() {}

    /// Whether the model produced anything yet (after which a failed call is not retried).
    public var started: Bool { !content.isEmpty || !reasoning.isEmpty || refusal != nil || !toolCalls.isEmpty }

    public mutating func apply(_ event: ProviderEvent) {
        switch event {
        case .reasoning(let text): reasoning += text
        case .content(let text): content += text
        case .refusal(let text): refusal = (refusal ?? "") + text
        case .toolCalls(let deltas): ToolCall.assemble(deltas, into: &toolCalls)
        case .logprobs(let value):
            var entries = logprobs ?? ([], [])
            entries.content += value["content"]?.arrayValue ?? []
            entries.refusal += value["refusal"]?.arrayValue ?? []
            logprobs = entries
        case .metadata(let value): metadata = value
        case .finish(let reason): finishReason = reason
        case .usage(let usage): self.usage = usage
        }
    }

    public static func == (a: CompletionOutput, b: CompletionOutput) -> Bool {
        a.content == b.content && a.reasoning == b.reasoning && a.refusal == b.refusal && a.toolCalls == b.toolCalls
            && a.logprobs?.content == b.logprobs?.content && a.logprobs?.refusal == b.logprobs?.refusal
            && a.metadata == b.metadata && a.finishReason == b.finishReason && a.usage == b.usage
    }
}

/// `GET /v1/models` entry.
public struct ModelListing: Sendable, Codable, Equatable {
    public var id: String
    public var object: String = "model"
    public var created: Int
    public var ownedBy: String

    public init(id: String, created: Int, ownedBy: String) {
        self.id = id
        self.created = created
        self.ownedBy = ownedBy
    }

    enum CodingKeys: String, CodingKey {
        case id, object, created, ownedBy = "owned_by"
    }
}
