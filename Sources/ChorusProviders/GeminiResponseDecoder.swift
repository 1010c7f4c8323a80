public import ChorusCore

/// Reads Gemini `GenerateContentResponse`s (a whole response, or one event of a stream) as
/// provider events, keeping what spans the stream: tool-call numbering, the finish reason, usage.
///
/// - parts with `thought: true` are reasoning, other text is content;
/// - a `functionCall` part is one whole OpenAI tool call (Gemini does not stream arguments), with
///   an id made here (`call_…`) and its `args` as JSON text. Its `thoughtSignature`, which
///   Gemini 3 requires back with the call, rides in the id after `__thought__`: the id is the one
///   thing of a call every client returns unchanged;
/// - `STOP` is `stop` (`tool_calls` when the answer called functions), `MAX_TOKENS` is `length`;
///   a safety or policy block, of the prompt (`promptFeedback.blockReason`) or of the answer
///   (`SAFETY`, `RECITATION`, …), is `content_filter`, with a refusal naming the reason and the
///   categories rated as the cause, so the client learns why;
/// - `usageMetadata`: prompt tokens, completion tokens = answer + thoughts, the thoughts also as
///   `completion_tokens_details.reasoning_tokens`.
public struct GeminiResponseDecoder: Sendable {
    /// Between a tool call's own id and the call's thought signature.
    static let signatureSeparator = "__thought__"
    static let blockReasons: Set<String> = ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "LANGUAGE"]

    /// The OpenAI finish reason, once the upstream gave one.
    public private(set) var finishReason: String?
    /// The latest usage reported (Gemini repeats it, growing, on stream events).
    public private(set) var usage: Usage?
    private var toolCalls = 0

    public init() {}

    /// The events of one response. Throws `upstreamError` for an error object (sent mid-stream).
    public mutating func events(_ response: JSONValue) throws -> [ProviderEvent] {
        if let error = response["error"], error.objectValue != nil {
            let code = error["code"]?.intValue
            throw ChorusError.upstreamError(
                message: error["message"]?.stringValue ?? "the upstream reported an error mid-stream",
                upstreamStatus: code.flatMap { $0 >= 400 ? $0 : nil })
        }
        if let metadata = response["usageMetadata"], metadata.objectValue != nil {
            usage = Self.usage(metadata)
        }
        var events: [ProviderEvent] = []
        if let reason = response["promptFeedback"]?["blockReason"]?.stringValue {
            finishReason = "content_filter"
            events.append(.refusal(Self.blockText(what: "prompt", reason: reason, ratings: response["promptFeedback"]?["safetyRatings"], message: nil)))
            return events
        }
        guard let candidate = response["candidates"]?.arrayValue?.first else { return events }
        for part in candidate["content"]?["parts"]?.arrayValue ?? [] {
            if let text = part["text"]?.stringValue {
                guard !text.isEmpty else { continue }
                events.append(part["thought"]?.boolValue == true ? .reasoning(text) : .content(text))
            } else if let call = part["functionCall"] {
                let arguments = (try? String(decoding: (call["args"] ?? .object([:])).encoded(), as: UTF8.self)) ?? "{}"
                var id = Identifier.make("call_")
                if let signature = (part["thoughtSignature"] ?? part["thought_signature"])?.stringValue, !signature.isEmpty {
                    id += Self.signatureSeparator + signature
                }
                events.append(.toolCalls(.array([.object([
                    "index": .int(toolCalls), "id": .string(id), "type": .string("function"),
                    "function": .object(["name": .string(call["name"]?.stringValue ?? ""), "arguments": .string(arguments)]),
                ])])))
                toolCalls += 1
            }
        }
        if let reason = candidate["finishReason"]?.stringValue, reason != "FINISH_REASON_UNSPECIFIED" {
            switch reason {
            case "STOP": finishReason = toolCalls > 0 ? "tool_calls" : "stop"
            case "MAX_TOKENS": finishReason = "length"
            case _ where Self.blockReasons.contains(reason):
                finishReason = "content_filter"
                events.append(.refusal(Self.blockText(what: "response", reason: reason, ratings: candidate["safetyRatings"], message: candidate["finishMessage"]?.stringValue)))
            default: finishReason = toolCalls > 0 ? "tool_calls" : "stop"
            }
        }
        return events
    }

    /// `Gemini blocked the response (SAFETY: HARM_CATEGORY_DANGEROUS_CONTENT).`
    static func blockText(what: String, reason: String, ratings: JSONValue?, message: String?) -> String {
        let ratings = ratings?.arrayValue ?? []
        var categories = ratings.filter { $0["blocked"]?.boolValue == true }
        if categories.isEmpty { categories = ratings.filter { ["HIGH", "MEDIUM"].contains($0["probability"]?.stringValue ?? "") } }
        let names = categories.compactMap { $0["category"]?.stringValue }
        var text = "Gemini blocked the \(what) (\(reason)\(names.isEmpty ? "" : ": " + names.joined(separator: ", ")))."
        if let message, !message.isEmpty { text += " " + message }
        return text
    }

    static func usage(_ metadata: JSONValue) -> Usage {
        let thoughts = metadata["thoughtsTokenCount"]?.intValue ?? 0
        return Usage(
            promptTokens: metadata["promptTokenCount"]?.intValue ?? 0,
            completionTokens: (metadata["candidatesTokenCount"]?.intValue ?? 0) + thoughts,
            promptTokensDetails: .object(["cached_tokens": .int(metadata["cachedContentTokenCount"]?.intValue ?? 0)]),
            completionTokensDetails: .object(["reasoning_tokens": .int(thoughts)]))
    }
}
