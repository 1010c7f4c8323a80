/// Gemini `GenerateContentResponse` JSON for one planned answer: the events of a
/// `streamGenerateContent?alt=sse` stream (`\r\n\r\n` after each, as Google sends them, and no
/// `[DONE]`: the stream ends with the body) and the body of a `generateContent` answer.
///
/// Text goes in `text` parts, reasoning in `thought: true` parts (sent only when the request
/// asked for thoughts: `thinkingConfig.includeThoughts`), a tool call as one whole
/// `functionCall` part (Gemini does not stream arguments). The finish reason is `STOP` (tool
/// calls too), `MAX_TOKENS`, or the `block` option's reason with a blocked safety rating. As
/// Gemini 3 does, the first `functionCall` part of an answer carries a `thoughtSignature`
/// (`fakesig-<response id>`) that must come back with the call (`GeminiRequest` checks).
/// `usageMetadata`: the prompt's words, answer tokens as `candidatesTokenCount` (argument
/// fragments for tool calls), reasoning tokens as `thoughtsTokenCount`.
struct GeminiEvents: StreamEventRenderer {
    let plan: CompletionPlan
    let options: FakeOptions
    let includeThoughts: Bool

    /// The category named in a block's safety rating.
    static let blockedCategory = "HARM_CATEGORY_DANGEROUS_CONTENT"

    var openingEvent: String? { nil }

    func contentEvent(_ text: String) -> String {
        self.event(parts: self.textPart(text))
    }

    func reasoningEvent(_ text: String) -> String {
        self.includeThoughts ? self.event(parts: self.textPart(text, thought: true)) : ""
    }

    func answerEvent(_ index: Int) -> String? {
        switch self.plan.answer {
        case .content(let tokens), .refusal(let tokens):
            return self.contentEvent(tokens[index])
        case .toolCalls(let toolCalls):
            guard case .header(let call) = toolCalls.chunks[index] else { return nil }
            return self.event(parts: self.functionCallPart(toolCalls.calls[call], signed: call == 0))
        }
    }

    var closingEvents: [String] {
        ["data: " + self.response(parts: self.textPart(""), final: true) + "\r\n\r\n"]
    }

    func errorEvent(message: String) -> String {
        "data: " + Self.errorJSON(status: 500, message: message) + "\r\n\r\n"
    }

    /// The whole answer as one `generateContent` body.
    func completeBody() -> String {
        var parts: [String] = []
        if self.includeThoughts && self.plan.reasoningCount > 0 {
            parts.append(self.textPart(self.plan.reasoningText, thought: true))
        }
        switch self.plan.answer {
        case .content(let tokens), .refusal(let tokens):
            if tokens.count > 0 { parts.append(self.textPart(tokens.fullText)) }
        case .toolCalls(let toolCalls):
            parts += toolCalls.calls.map { self.functionCallPart($0, signed: $0.index == 0) }
        }
        return self.response(parts: parts.joined(separator: ","), final: true)
    }

    /// A prompt blocked before any answer: `promptFeedback` and no candidate.
    func promptBlockedBody(reason: String) -> String {
        #"{"promptFeedback":{"blockReason":"# + JSONText.quoted(reason) + #","safetyRatings":["# + Self.blockedRating + "]}"
            + #","usageMetadata":{"promptTokenCount":\#(self.plan.promptTokens),"totalTokenCount":\#(self.plan.promptTokens)}"#
            + self.trailer + "}"
    }

    /// `{"error":{"code","message","status"}}`, as Google's APIs write errors.
    static func errorJSON(status: Int, message: String, reason: String? = nil) -> String {
        var json = #"{"error":{"code":\#(status),"message":"#
        JSONText.appendString(message, to: &json)
        json += #","status":"\#(self.statusName(status))""#
        if let reason {
            json += #","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"\#(reason)","domain":"googleapis.com"}]"#
        }
        return json + "}}"
    }

    static func statusName(_ status: Int) -> String {
        switch status {
        case 400: "INVALID_ARGUMENT"
        case 401: "UNAUTHENTICATED"
        case 403: "PERMISSION_DENIED"
        case 404: "NOT_FOUND"
        case 429: "RESOURCE_EXHAUSTED"
        case 500: "INTERNAL"
        case 503: "UNAVAILABLE"
        case 504: "DEADLINE_EXCEEDED"
        default: "UNKNOWN"
        }
    }

    private static let blockedRating = #"{"category":"\#(blockedCategory)","probability":"HIGH","blocked":true}"#

    private var trailer: String {
        #","modelVersion":"# + self.plan.quotedModel + #","responseId":"\#(self.plan.id)""#
    }

    private func event(parts: String) -> String {
        "data: " + self.response(parts: parts, final: false) + "\r\n\r\n"
    }

    private func response(parts: String, final: Bool) -> String {
        var json = #"{"candidates":[{"content":{"parts":["# + parts + #"],"role":"model"}"#
        if final {
            let reason: String
            if let block = self.options.block {
                reason = block
            } else {
                reason = self.plan.finishReason == .length ? "MAX_TOKENS" : "STOP"
            }
            json += #","finishReason":"\#(reason)""#
            if self.options.block != nil {
                json += #","safetyRatings":["# + Self.blockedRating + "]"
            }
        }
        json += #","index":0}]"#
        if final {
            let thoughts = self.plan.reasoningCount
            let candidates = self.plan.answer.tokenCount
            json += #","usageMetadata":{"promptTokenCount":\#(self.plan.promptTokens),"candidatesTokenCount":\#(candidates),"#
            if thoughts > 0 { json += #""thoughtsTokenCount":\#(thoughts),"# }
            json += #""totalTokenCount":\#(self.plan.promptTokens + candidates + thoughts)}"#
        }
        return json + self.trailer + "}"
    }

    private func textPart(_ text: String, thought: Bool = false) -> String {
        var json = #"{"text":"#
        JSONText.appendString(text, to: &json)
        return json + (thought ? #","thought":true}"# : "}")
    }

    static let signaturePrefix = "fakesig-"

    private func functionCallPart(_ call: ToolCallPlan.Call, signed: Bool) -> String {
        var json = #"{"functionCall":{"name":"#
        JSONText.appendString(call.name, to: &json)
        // A call cut by `max_tokens` has partial arguments, which are no JSON object.
        json += #","args":"# + (call.arguments.isEmpty || self.plan.finishReason == .length ? "{}" : call.arguments) + "}"
        if signed {
            json += #","thoughtSignature":"\#(Self.signaturePrefix)\#(self.plan.id)""#
        }
        return json + "}"
    }
}
