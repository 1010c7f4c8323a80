/// Builds OpenAI response bodies: `chat.completion`, `chat.completion.chunk`.
public struct CompletionEnvelope: Sendable {
    public let id: String
    public let created: Int
    public let model: String
    /// Chorus extension: the conversation the turn was stored in (nil when nothing is stored).
    public let conversationID: String?
    /// The members every chunk of the stream starts with (`"id":…,"object":…,"created":…,"model":…`),
    /// encoded once rather than once per token.
    private let chunkHeader: [UInt8]

    /// What one streamed chunk carries in its choice.
    public enum Delta: Sendable {
        /// The first chunk: `role` and an empty `content`.
        case role
        case content(String)
        case reasoning(String)
        case refusal(String)
        /// `delta.tool_calls` as the upstream sent it.
        case toolCalls(JSONValue)
        /// An empty delta with the choice's `logprobs`.
        case logprobs(JSONValue)
        /// An empty delta with the finish reason.
        case finish(String)
    }

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
        // OpenAI's content is null when the model only called tools or refused.
        json.key("content")
        if output.content.isEmpty && (!output.toolCalls.isEmpty || output.refusal != nil) { json.null() } else { json.string(output.content) }
        json.key("refusal"); json.string(output.refusal)
        if !output.reasoning.isEmpty { json.key("reasoning_content"); json.string(output.reasoning) }
        if !output.toolCalls.isEmpty {
            json.key("tool_calls"); json.value(.array(output.toolCalls.map(\.json)))
        }
        json.endObject()
        json.key("logprobs")
        if let logprobs = output.logprobs {
            json.value(.object([
                "content": logprobs.content.isEmpty && !logprobs.refusal.isEmpty ? .null : .array(logprobs.content),
                "refusal": logprobs.refusal.isEmpty ? .null : .array(logprobs.refusal),
            ]))
        } else {
            json.null()
        }
        json.key("finish_reason"); json.string(Self.openAIFinishReason(output.finishReason))
        json.endObject()
        json.endArray()
        Self.metadata(&json, output.metadata)
        if let usage = output.usage { json.key("usage"); usage.write(to: &json) }
        json.endObject()
        return json.bytes
    }

    /// One streamed chunk. `metadata` is `metadataMembers(_:)` of what the upstream reported so far.
    public func chunk(_ delta: Delta, includeUsageField: Bool, metadata: [UInt8] = []) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.raw(chunkHeader)
        json.key("choices")
        json.beginArray()
        json.beginObject()
        json.key("index"); json.int(0)
        json.key("delta")
        json.beginObject()
        var finishReason: String?
        var logprobs: JSONValue?
        switch delta {
        case .role: json.key("role"); json.string("assistant"); json.key("content"); json.string("")
        case .content(let text): json.key("content"); json.string(text)
        case .reasoning(let text): json.key("reasoning_content"); json.string(text)
        case .refusal(let text): json.key("refusal"); json.string(text)
        case .toolCalls(let calls): json.key("tool_calls"); json.value(calls)
        case .logprobs(let value): logprobs = value
        case .finish(let reason): finishReason = Self.openAIFinishReason(reason)
        }
        json.endObject()
        json.key("logprobs")
        if let logprobs { json.value(Self.chunkLogprobs(logprobs)) } else { json.null() }
        json.key("finish_reason"); json.string(finishReason)
        json.endObject()
        json.endArray()
        if !metadata.isEmpty { json.raw(metadata) }
        if includeUsageField { json.key("usage"); json.null() }
        json.endObject()
        return json.bytes
    }

    /// The last chunk when `stream_options.include_usage` is set: no choices, the usage.
    public func usageChunk(_ usage: Usage, metadata: [UInt8] = []) -> [UInt8] {
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        json.raw(chunkHeader)
        json.key("choices"); json.beginArray(); json.endArray()
        if !metadata.isEmpty { json.raw(metadata) }
        json.key("usage"); usage.write(to: &json)
        json.endObject()
        return json.bytes
    }

    /// `"system_fingerprint":…,"service_tier":…` for `chunk(_:includeUsageField:metadata:)`: encoded
    /// once when the upstream reports them, not once per chunk. Empty when it reported neither.
    public static func metadataMembers(_ metadata: ResponseMetadata) -> [UInt8] {
        var json = JSONWriter(capacity: 64)
        json.beginObject()
        Self.metadata(&json, metadata)
        return Array(json.bytes.dropFirst())
    }

    private static func metadata(_ json: inout JSONWriter, _ metadata: ResponseMetadata) {
        if let fingerprint = metadata.systemFingerprint { json.key("system_fingerprint"); json.string(fingerprint) }
        if let tier = metadata.serviceTier { json.key("service_tier"); json.string(tier) }
    }

    /// A chunk's `logprobs` with both members OpenAI requires (`content`, `refusal`; null when absent).
    private static func chunkLogprobs(_ value: JSONValue) -> JSONValue {
        guard case .object(var object) = value else { return .null }
        if object["content"] == nil { object["content"] = .null }
        if object["refusal"] == nil { object["refusal"] = .null }
        return .object(object)
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
