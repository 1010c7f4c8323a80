/// What one completion says, decided once per request from the body and the fake options.
///
/// Answer token `i` is `"t\(i) "` and reasoning token `i` is `"r\(i) "`, so a test can predict
/// the full text; `Answer` lists the other answers (echo, tool calls, tool results, JSON,
/// refusal) and the limits (`stop`, `max_completion_tokens`).
///
/// Every response and chunk carries `"system_fingerprint":"fp_fake"`, and the request's
/// `service_tier` when it has one (`auto` reported as `default`, as OpenAI does). Usage always
/// has `prompt_tokens_details.cached_tokens` (0) and `completion_tokens_details.reasoning_tokens`.
struct CompletionPlan: Sendable {
    let id: String
    let created: Int
    /// The model name as a JSON string literal (quotes included).
    let quotedModel: String
    /// The members that follow `model` in every body: `,"service_tier":…,"system_fingerprint":…`.
    let metadataJSON: String
    let answer: Answer
    let finishReason: Answer.FinishReason
    let reasoningCount: Int
    let thinkTags: Bool
    let promptTokens: Int
    /// Alternatives per logprobs entry when the request asked for logprobs, else `nil`.
    let topLogprobs: Int?

    var completionTokens: Int { self.answer.tokenCount + self.reasoningCount }

    static func reasoningToken(_ index: Int) -> String { "r\(index) " }

    /// `metadataJSON` for a request's `service_tier`.
    static func metadataJSON(serviceTier: String?) -> String {
        let fingerprint = #","system_fingerprint":"fp_fake""#
        guard let serviceTier else { return fingerprint }
        return #","service_tier":"# + JSONText.quoted(serviceTier == "auto" ? "default" : serviceTier) + fingerprint
    }

    /// All reasoning tokens concatenated.
    var reasoningText: String {
        var text = ""
        for index in 0..<self.reasoningCount {
            text += Self.reasoningToken(index)
        }
        return text
    }

    /// `usage` as a JSON object.
    var usageJSON: String {
        """
        {"prompt_tokens":\(promptTokens),"completion_tokens":\(completionTokens),\
        "total_tokens":\(promptTokens + completionTokens),"prompt_tokens_details":{"cached_tokens":0},\
        "completion_tokens_details":{"reasoning_tokens":\(reasoningCount)}}
        """
    }

    /// The body of a non-streamed `chat.completion`.
    func completionJSON(includeUsage: Bool) -> String {
        var json = #"{"id":"\#(id)","object":"chat.completion","created":\#(created),"model":\#(quotedModel)"#
        json += self.metadataJSON
        json += #","choices":[{"index":0,"message":{"role":"assistant","content":"#
        let thinking = self.thinkTags ? "<think>" + self.reasoningText + "</think>" : nil
        if case .content(let tokens) = self.answer {
            JSONText.appendString((thinking ?? "") + tokens.fullText, to: &json)
        } else if let thinking {
            JSONText.appendString(thinking, to: &json)
        } else {
            json += "null"
        }
        if self.reasoningCount > 0 && !self.thinkTags {
            json += #","reasoning_content":"#
            JSONText.appendString(self.reasoningText, to: &json)
        }
        json += #","refusal":"#
        if case .refusal(let tokens) = self.answer {
            JSONText.appendString(tokens.fullText, to: &json)
        } else {
            json += "null"
        }
        if case .toolCalls(let plan) = self.answer, !plan.calls.isEmpty {
            json += #","tool_calls":["#
            for call in plan.calls {
                if call.index > 0 { json += "," }
                json += #"{"id":"\#(call.id)","type":"function","function":{"name":"#
                JSONText.appendString(call.name, to: &json)
                json += #","arguments":"#
                JSONText.appendString(call.arguments, to: &json)
                json += "}}"
            }
            json += "]"
        }
        json += #"},"logprobs":"#
        self.appendLogprobs(to: &json)
        json += #","finish_reason":"\#(finishReason.rawValue)"}]"#
        if includeUsage {
            json += #","usage":"# + self.usageJSON
        }
        return json + "}"
    }

    /// A non-streamed choice's `logprobs`: every text token's entry, or `null`.
    private func appendLogprobs(to json: inout String) {
        guard let topLogprobs else {
            json += "null"
            return
        }
        switch self.answer {
        case .content(let tokens):
            json += #"{"content":"#
            LogprobsJSON.appendEntries(of: tokens, topCount: topLogprobs, to: &json)
            json += #","refusal":null}"#
        case .refusal(let tokens):
            json += #"{"content":null,"refusal":"#
            LogprobsJSON.appendEntries(of: tokens, topCount: topLogprobs, to: &json)
            json += "}"
        case .toolCalls:
            json += "null"
        }
    }
}
