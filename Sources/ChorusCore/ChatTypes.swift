/// Token counts, as OpenAI's `CompletionUsage`.
public struct Usage: Sendable, Equatable, Codable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int { promptTokens + completionTokens }

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
    }

    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        promptTokens = try c.decodeIfPresent(Int.self, forKey: .promptTokens) ?? 0
        completionTokens = try c.decodeIfPresent(Int.self, forKey: .completionTokens) ?? 0
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(completionTokens, forKey: .completionTokens)
        try c.encode(totalTokens, forKey: .totalTokens)
    }

    func write(to json: inout JSONWriter) {
        json.beginObject()
        json.key("prompt_tokens"); json.int(promptTokens)
        json.key("completion_tokens"); json.int(completionTokens)
        json.key("total_tokens"); json.int(totalTokens)
        json.endObject()
    }
}

/// What a provider yields while a completion is produced.
public enum ProviderEvent: Sendable, Equatable {
    /// Thinking text (upstream `reasoning_content`, or text inside `<think>` tags).
    case reasoning(String)
    /// Answer text.
    case content(String)
    /// The upstream's finish reason (`stop`, `length`, …).
    case finish(String)
    /// Token usage reported by the upstream.
    case usage(Usage)
}

/// A finished (or interrupted) completion, as accumulated from provider events.
public struct CompletionOutput: Sendable, Equatable {
    public var content: String = ""
    public var reasoning: String = ""
    public var finishReason: String?
    public var usage: Usage?

    public init() {}

    public mutating func apply(_ event: ProviderEvent) {
        switch event {
        case .reasoning(let text): reasoning += text
        case .content(let text): content += text
        case .finish(let reason): finishReason = reason
        case .usage(let usage): self.usage = usage
        }
    }
}

/// Builds OpenAI response bodies: `chat.completion`, `chat.completion.chunk`.
public struct CompletionEnvelope: Sendable {
    public let id: String
    public let created: Int
    public let model: String
    /// Chorus extension: the conversation the turn was stored in.
    public let conversationID: String?
    /// The members every chunk of the stream starts with (`"id":…,"object":…,"created":…,"model":…`),
    /// encoded once rather than once per token.
    private let chunkHeader: [UInt8]

    public init(id: String, created: Int, model: String, conversationID: String?) {
        self.id = id
        self.created = created
        self.model = model
        self.conversationID = conversationID
        var json = JSONWriter(capacity: 128)
        json.beginObject()
        Self.header(&json, object: "chat.completion.chunk", id: id, created: created, model: model, conversationID: conversationID)
        self.chunkHeader = Array(json.bytes.dropFirst())  // without the `{`
    }

    /// A non-streamed `chat.completion`.
    public func completion(_ output: CompletionOutput) -> [UInt8] {
        var json = JSONWriter(capacity: 512 + output.content.utf8.count + output.reasoning.utf8.count)
        json.beginObject()
        Self.header(&json, object: "chat.completion", id: id, created: created, model: model, conversationID: conversationID)
        json.key("choices")
        json.beginArray()
        json.beginObject()
        json.key("index"); json.int(0)
        json.key("message")
        json.beginObject()
        json.key("role"); json.string("assistant")
        json.key("content"); json.string(output.content)
        json.key("refusal"); json.null()
        if !output.reasoning.isEmpty { json.key("reasoning_content"); json.string(output.reasoning) }
        json.endObject()
        json.key("logprobs"); json.null()
        json.key("finish_reason"); json.string(Self.openAIFinishReason(output.finishReason))
        json.endObject()
        json.endArray()
        if let usage = output.usage { json.key("usage"); usage.write(to: &json) }
        json.endObject()
        return json.bytes
    }

    /// One streamed chunk carrying a delta. `role` is set on the first chunk only.
    public func chunk(role: Bool = false, content: String? = nil, reasoning: String? = nil, finishReason: String? = nil, includeUsageField: Bool) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.raw(chunkHeader)
        json.key("choices")
        json.beginArray()
        json.beginObject()
        json.key("index"); json.int(0)
        json.key("delta")
        json.beginObject()
        if role { json.key("role"); json.string("assistant") }
        if let content { json.key("content"); json.string(content) }
        if let reasoning { json.key("reasoning_content"); json.string(reasoning) }
        json.endObject()
        json.key("logprobs"); json.null()
        json.key("finish_reason"); json.string(finishReason.map { Self.openAIFinishReason($0) })
        json.endObject()
        json.endArray()
        if includeUsageField { json.key("usage"); json.null() }
        json.endObject()
        return json.bytes
    }

    /// The last chunk when `stream_options.include_usage` is set: no choices, the usage.
    public func usageChunk(_ usage: Usage) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.raw(chunkHeader)
        json.key("choices"); json.beginArray(); json.endArray()
        json.key("usage"); usage.write(to: &json)
        json.endObject()
        return json.bytes
    }

    private static func header(_ json: inout JSONWriter, object: String, id: String, created: Int, model: String, conversationID: String?) {
        json.key("id"); json.string(id)
        json.key("object"); json.string(object)
        json.key("created"); json.int(created)
        json.key("model"); json.string(model)
        if let conversationID { json.key("conversation_id"); json.string(conversationID) }
    }

    /// OpenAI allows `stop | length | tool_calls | content_filter | function_call`; anything else
    /// an upstream invents (llama.cpp, vLLM extensions) is reported as `stop`.
    public static func openAIFinishReason(_ reason: String?) -> String {
        switch reason {
        case "length", "tool_calls", "content_filter", "function_call": reason!
        default: "stop"
        }
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
