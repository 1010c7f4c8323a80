/// The events of one streamed answer in an API's shape: OpenAI's `chat.completion.chunk`s
/// (`ChunkTemplate`) or Gemini's `GenerateContentResponse`s (`GeminiEvents`). `ChatStream`
/// decides what is sent when, and the faults; this says how each event reads.
protocol StreamEventRenderer: Sendable {
    /// Sent first (OpenAI's role chunk); nil for none.
    var openingEvent: String? { get }
    /// Content text outside the answer's tokens (`<think>` tags and the reasoning inside them).
    func contentEvent(_ text: String) -> String
    func reasoningEvent(_ text: String) -> String
    /// Answer chunk `index` of the plan; nil when the API sends nothing for it (Gemini sends a
    /// tool call whole with its header, not its arguments in fragments).
    func answerEvent(_ index: Int) -> String?
    /// What ends a finished stream: the finish reason, usage, `[DONE]`.
    var closingEvents: [String] { get }
    /// An error event sent mid-stream (`error_after`).
    func errorEvent(message: String) -> String
}
