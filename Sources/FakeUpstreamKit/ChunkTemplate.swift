/// The fixed text around every `chat.completion.chunk` of one stream, rendered once, and the
/// events built from it.
///
/// Only answer content chunks carry `logprobs` (when the request asked for them); the role
/// chunk, reasoning, `<think>` tags, tool-call chunks and the final chunk keep `null`. A
/// refusal token's logprobs go under `refusal`.
struct ChunkTemplate: StreamEventRenderer {
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"system_fingerprint":…,"choices":[{"index":0,"delta":{`
    let prefix: String
    /// Closes a chunk whose `finish_reason` is null.
    let suffix: String
    /// Closes a chunk after its `logprobs` value.
    private let afterLogprobs: String
    let finalEvent: String
    let usageEvent: String
    private let topLogprobs: Int?
    private let plan: CompletionPlan
    private let includeUsage: Bool

    init(plan: CompletionPlan, includeUsage: Bool) {
        self.plan = plan
        self.includeUsage = includeUsage
        let head = #"data: {"id":"\#(plan.id)","object":"chat.completion.chunk","created":\#(plan.created),"model":\#(plan.quotedModel)"#
            + plan.metadataJSON + ","
        self.prefix = head + #""choices":[{"index":0,"delta":{"#
        // With include_usage, OpenAI sends `"usage":null` on every chunk but the last.
        let usageNull = includeUsage ? #","usage":null"# : ""
        self.afterLogprobs = #","finish_reason":null}]"# + usageNull + "}\n\n"
        self.suffix = #"},"logprobs":null"# + self.afterLogprobs
        self.finalEvent = self.prefix + #"},"logprobs":null,"finish_reason":"\#(plan.finishReason.rawValue)"}]"# + usageNull + "}\n\n"
        self.usageEvent = head + #""choices":[],"usage":"# + plan.usageJSON + "}\n\n"
        self.topLogprobs = plan.topLogprobs
    }

    func event(delta: String) -> String {
        self.prefix + delta + self.suffix
    }

    /// A content chunk without logprobs (`<think>` tags, reasoning inside them).
    func contentEvent(_ text: String) -> String {
        var event = self.prefix
        event += #""content":"#
        JSONText.appendString(text, to: &event)
        return event + self.suffix
    }

    /// An answer content chunk, with its logprobs when `logprobs` and the request asked for them.
    func contentEvent(_ text: String, logprobs: Bool) -> String {
        guard logprobs, let topLogprobs else { return self.contentEvent(text) }
        var event = self.prefix
        event += #""content":"#
        JSONText.appendString(text, to: &event)
        event += #"},"logprobs":"#
        event += LogprobsJSON.choiceLogprobs(token: text, topCount: topLogprobs, refusal: false)
        return event + self.afterLogprobs
    }

    func refusalEvent(_ text: String) -> String {
        var event = self.prefix
        event += #""refusal":"#
        JSONText.appendString(text, to: &event)
        guard let topLogprobs else { return event + self.suffix }
        event += #"},"logprobs":"#
        event += LogprobsJSON.choiceLogprobs(token: text, topCount: topLogprobs, refusal: true)
        return event + self.afterLogprobs
    }

    func reasoningEvent(_ text: String) -> String {
        var event = self.prefix
        event += #""reasoning_content":"#
        JSONText.appendString(text, to: &event)
        return event + self.suffix
    }

    /// The first chunk of a tool call: its index, id, type, name and empty arguments.
    func toolCallHeaderEvent(_ call: ToolCallPlan.Call) -> String {
        var event = self.prefix
        event += #""tool_calls":[{"index":\#(call.index),"id":"\#(call.id)","type":"function","function":{"name":"#
        JSONText.appendString(call.name, to: &event)
        return event + #","arguments":""}}]"# + self.suffix
    }

    /// One fragment of tool call `index`'s arguments.
    func toolCallArgumentsEvent(index: Int, fragment: String) -> String {
        var event = self.prefix
        event += #""tool_calls":[{"index":\#(index),"function":{"arguments":"#
        JSONText.appendString(fragment, to: &event)
        return event + "}}]" + self.suffix
    }

    var openingEvent: String? {
        self.event(delta: #""role":"assistant","content":"","refusal":null"#)
    }

    var closingEvents: [String] {
        [self.finalEvent] + (self.includeUsage ? [self.usageEvent] : []) + ["data: [DONE]\n\n"]
    }

    func errorEvent(message: String) -> String {
        "data: " + OpenAIErrorBody.json(message: message, type: "server_error", code: "fake_error_after") + "\n\n"
    }

    /// The event for answer chunk `index`: a content or refusal token, or a tool-call chunk.
    func answerEvent(_ index: Int) -> String? {
        switch self.plan.answer {
        case .content(let tokens):
            self.contentEvent(tokens[index], logprobs: self.plan.topLogprobs != nil)
        case .refusal(let tokens):
            self.refusalEvent(tokens[index])
        case .toolCalls(let toolCalls):
            switch toolCalls.chunks[index] {
            case .header(let call):
                self.toolCallHeaderEvent(toolCalls.calls[call])
            case .arguments(let call, let fragment):
                self.toolCallArgumentsEvent(index: call, fragment: toolCalls.calls[call].fragments[fragment])
            }
        }
    }
}
