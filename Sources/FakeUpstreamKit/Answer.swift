/// What a completion answers with, and why it ends, decided once per request.
///
/// The first of these that applies makes the answer:
/// 1. `refusal=1`: the refusal text (`delta.refusal`, `message.refusal`), in word tokens;
/// 2. tool calls, when `ToolCallPlan` says the request gets them;
/// 3. the last message is a tool result: `tool results: <id>=<text>; <id>=<text>` for the
///    trailing run of tool messages, in word tokens;
/// 4. `response_format` `json_object`: `{"echo":"<last user text, directive removed>"}`, or
///    `json_schema`: a sample of `schema` (`ObjectSchema.sampleJSON(index: 0)`), both as
///    Python's compact `json.dumps` prints them, in fragments of at most 8 characters;
/// 5. `echo=1`: the echo line in word tokens;
/// 6. otherwise `tokens` counted tokens.
///
/// Then the request's limits: a text answer is cut before the first `stop` string (finish
/// reason `stop`), and any answer keeps at most `max_completion_tokens` (else `max_tokens`)
/// tokens — tool calls count argument fragments — with finish reason `length` when that
/// dropped something.
enum Answer: Sendable {
    /// Text in `delta.content` / `message.content`.
    case content(AnswerTokens)
    /// Text in `delta.refusal` / `message.refusal`.
    case refusal(AnswerTokens)
    case toolCalls(ToolCallPlan)

    enum FinishReason: String, Sendable {
        case stop
        case length
        case toolCalls = "tool_calls"
        /// `block` / `block_prompt`.
        case contentFilter = "content_filter"
    }

    static let refusalText = "I'm sorry, but I can't help with that."

    /// Chunks the answer streams in (tool-call headers count too).
    var streamedCount: Int {
        switch self {
        case .content(let tokens), .refusal(let tokens): tokens.count
        case .toolCalls(let plan): plan.chunks.count
        }
    }

    /// Completion tokens: text tokens, or tool-call argument fragments.
    var tokenCount: Int {
        switch self {
        case .content(let tokens), .refusal(let tokens): tokens.count
        case .toolCalls(let plan): plan.fragmentCount
        }
    }

    /// The answer to `chat` and how it finishes.
    /// - Parameters:
    ///   - userText: The last user message's text without its fake directive.
    ///   - sequence: The request's sequence number, for tool-call ids.
    static func decide(
        for chat: ChatRequest,
        options: FakeOptions,
        userText: String,
        sequence: Int,
        defaultTokenCount: Int
    ) -> (answer: Answer, finishReason: FinishReason) {
        let answer: Answer
        if options.refusal {
            answer = .refusal(.words(of: self.refusalText))
        } else if let plan = ToolCallPlan(for: chat, count: options.toolCalls, sequence: sequence) {
            answer = .toolCalls(plan)
        } else if chat.messages.last?.role == "tool" {
            let results = chat.trailingToolMessages.map { "\($0.toolCallID ?? "")=\($0.text)" }
            answer = .content(.words(of: "tool results: " + results.joined(separator: "; ")))
        } else if let json = self.jsonAnswer(format: chat.responseFormat, userText: userText) {
            answer = .content(.fragments(of: json))
        } else if options.echo {
            answer = .content(.words(of: "echo: \(chat.messages.count) | " + userText))
        } else {
            answer = .content(.counted(options.tokens ?? defaultTokenCount))
        }
        return self.limited(answer, stop: chat.stop?.values ?? [], maxTokens: chat.maxCompletionTokens ?? chat.maxTokens)
    }

    /// The JSON text a `json_object` or `json_schema` response format asks for, else `nil`.
    private static func jsonAnswer(format: ChatRequest.ResponseFormat?, userText: String) -> String? {
        switch format?.type {
        case "json_object":
            var json = #"{"echo":"#
            JSONText.appendPythonString(userText, to: &json)
            return json + "}"
        case "json_schema":
            return (format?.jsonSchema?.schema ?? ObjectSchema()).sampleJSON(index: 0)
        default:
            return nil
        }
    }

    private static func limited(_ answer: Answer, stop: [String], maxTokens: Int?) -> (answer: Answer, finishReason: FinishReason) {
        func limitedText(_ tokens: AnswerTokens) -> (tokens: AnswerTokens, finishReason: FinishReason) {
            var tokens = tokens
            if !stop.isEmpty, let cut = tokens.cut(atFirstOf: stop) {
                tokens = cut
            }
            if let maxTokens, tokens.count > maxTokens {
                return (tokens.prefix(max(0, maxTokens)), .length)
            }
            return (tokens, .stop)
        }
        switch answer {
        case .content(let tokens):
            let limited = limitedText(tokens)
            return (.content(limited.tokens), limited.finishReason)
        case .refusal(let tokens):
            let limited = limitedText(tokens)
            return (.refusal(limited.tokens), limited.finishReason)
        case .toolCalls(let plan):
            if let maxTokens, plan.fragmentCount > maxTokens {
                return (.toolCalls(plan.truncated(toFragments: max(0, maxTokens))), .length)
            }
            return (answer, .toolCalls)
        }
    }
}
