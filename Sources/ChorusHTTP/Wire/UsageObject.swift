import ChorusStore

/// One group of `GET /v1/usage` / `GET /v1/admin/usage`; dimensions not grouped by are left out.
struct UsageObject: Encodable, Sendable {
    let row: SQLUsageStore.Row

    enum CodingKeys: String, CodingKey {
        case day, model, requests, cost
        case userID = "user_id"
        case apiKeyID = "api_key_id"
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case reasoningTokens = "reasoning_tokens"
        case totalTokens = "total_tokens"
        case cacheHits = "cache_hits"
        case averageTimeToFirstToken = "avg_time_to_first_token_ms"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encodeIfPresent(row.day, forKey: .day)
        try c.encodeIfPresent(row.model, forKey: .model)
        try c.encodeIfPresent(row.userID, forKey: .userID)
        try c.encodeIfPresent(row.apiKeyID, forKey: .apiKeyID)
        try c.encode(row.requests, forKey: .requests)
        try c.encode(row.promptTokens, forKey: .promptTokens)
        try c.encode(row.completionTokens, forKey: .completionTokens)
        try c.encode(row.reasoningTokens, forKey: .reasoningTokens)
        try c.encode(row.promptTokens + row.completionTokens, forKey: .totalTokens)
        try c.encode(row.cacheHits, forKey: .cacheHits)
        try c.encode(row.cost, forKey: .cost)
        try c.encode(row.averageTimeToFirstTokenMilliseconds.map { ($0 * 10).rounded() / 10 }, forKey: .averageTimeToFirstToken)
    }
}
