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
