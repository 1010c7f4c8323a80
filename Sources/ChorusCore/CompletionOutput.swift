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
