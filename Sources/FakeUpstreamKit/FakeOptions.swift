/// Per-request behaviour of the fake upstream.
///
/// Options come from two places, both written as whitespace-separated `key=value` pairs:
/// - a directive `[[fake key=value ...]]` inside the text of the last user message (tests go
///   through the gateway, which forwards only the chat body);
/// - the request header `X-Fake: key=value ...` (benchmarks talking to the fake directly).
///
/// The header is applied after the directive, so for a key given in both the header wins.
/// "After K tokens" always counts answer tokens already sent (reasoning tokens come first;
/// for tool calls every tool-call chunk counts, headers included); a K at or beyond the
/// answer length fires after the last answer token.
struct FakeOptions: Sendable, Equatable {
    /// Answer tokens; `nil` means the configured default.
    var tokens: Int?
    /// Reasoning tokens sent before the answer.
    var reasoning = 0
    /// Send reasoning inside the content between `<think>` tags instead of `reasoning_content`.
    var thinkTags = false
    /// Tokens per second; `nil` means the configured default, 0 means no delay.
    var rate: Double?
    /// Respond with this HTTP status and an OpenAI-shaped error body.
    var status: Int?
    /// `Retry-After` seconds to send with an error status.
    var retryAfter: Int?
    /// `status` fails only the first N requests with the same last user message; later ones are
    /// answered (a retried call that succeeds).
    var times: Int?
    /// Seconds to wait before the first byte of the response (before the headers).
    var stallFirst: Double = 0
    /// After this many answer tokens, pause for `stall` seconds.
    var stallAfter: Int?
    var stall: Double = 0
    /// After this many answer tokens, send one event that is not valid JSON, then continue.
    var malformedAfter: Int?
    /// After this many answer tokens, close the connection abruptly.
    var disconnectAfter: Int?
    /// After this many answer tokens, send an SSE error event and end without `[DONE]`.
    var errorAfter: Int?
    /// Answer with `echo: <message count> | <last user text>` instead of counted tokens.
    var echo = false
    /// Include `usage` in a non-streamed response.
    var usage = true
    /// Interleave `: keep-alive` comments and split some events across two writes.
    var comments = false
    /// Watch for the client closing the connection while streaming (`nil`: only when the
    /// stream has delays). Watching closes the connection after the stream.
    var watchClose: Bool?
    /// Tool calls in an answer to a request that offers tools (0: answer with text instead).
    var toolCalls = 1
    /// Refuse: answer with a fixed refusal text in `refusal` instead of `content`.
    var refusal = false
    /// Block the answer after its tokens, for this reason (`SAFETY`, `RECITATION`, …): Gemini's
    /// candidate `finishReason` with a blocked safety rating; `finish_reason: content_filter`
    /// in the OpenAI mode.
    var block: String?
    /// Block the prompt for this reason: Gemini's `promptFeedback.blockReason` and no candidate
    /// (`content_filter` with no answer in the OpenAI mode).
    var blockPrompt: String?

    /// The keys accepted, for error messages.
    static let keys = [
        "tokens", "reasoning", "think_tags", "rate", "status", "retry_after", "times", "stall_first",
        "stall_after", "stall", "malformed_after", "disconnect_after", "error_after", "echo",
        "usage", "comments", "watch_close", "tool_calls", "refusal", "block", "block_prompt",
    ]

    /// Applies `key=value` pairs from `text` on top of the current values.
    mutating func apply(arguments text: Substring) throws(FakeOptionError) {
        for word in text.split(whereSeparator: \.isWhitespace) {
            guard let equals = word.firstIndex(of: "=") else {
                throw FakeOptionError(message: "fake option '\(word)' is not of the form key=value")
            }
            let key = word[..<equals]
            let value = word[word.index(after: equals)...]
            try self.apply(key: key, value: value)
        }
    }

    private mutating func apply(key: Substring, value: Substring) throws(FakeOptionError) {
        switch key {
        case "tokens": self.tokens = try Self.count(key, value)
        case "reasoning": self.reasoning = try Self.count(key, value)
        case "think_tags": self.thinkTags = try Self.flag(key, value)
        case "rate": self.rate = try Self.seconds(key, value)
        case "status":
            let status = try Self.count(key, value)
            guard (100...599).contains(status) else {
                throw FakeOptionError(message: "fake option status=\(value) is not an HTTP status code")
            }
            self.status = status
        case "retry_after": self.retryAfter = try Self.count(key, value)
        case "times": self.times = try Self.count(key, value)
        case "stall_first": self.stallFirst = try Self.seconds(key, value)
        case "stall_after": self.stallAfter = try Self.count(key, value)
        case "stall": self.stall = try Self.seconds(key, value)
        case "malformed_after": self.malformedAfter = try Self.count(key, value)
        case "disconnect_after": self.disconnectAfter = try Self.count(key, value)
        case "error_after": self.errorAfter = try Self.count(key, value)
        case "echo": self.echo = try Self.flag(key, value)
        case "usage": self.usage = try Self.flag(key, value)
        case "comments": self.comments = try Self.flag(key, value)
        case "watch_close": self.watchClose = try Self.flag(key, value)
        case "tool_calls": self.toolCalls = try Self.count(key, value)
        case "refusal": self.refusal = try Self.flag(key, value)
        case "block": self.block = try Self.reason(key, value)
        case "block_prompt": self.blockPrompt = try Self.reason(key, value)
        default:
            throw FakeOptionError(
                message: "unknown fake option '\(key)'; known: \(Self.keys.joined(separator: ", "))"
            )
        }
    }

    private static func count(_ key: Substring, _ value: Substring) throws(FakeOptionError) -> Int {
        guard let number = Int(value), number >= 0 else {
            throw FakeOptionError(message: "fake option \(key)=\(value) needs a whole number >= 0")
        }
        return number
    }

    private static func seconds(_ key: Substring, _ value: Substring) throws(FakeOptionError) -> Double {
        guard let number = Double(value), number.isFinite, number >= 0 else {
            throw FakeOptionError(message: "fake option \(key)=\(value) needs a number >= 0")
        }
        return number
    }

    /// A block reason as Gemini spells it: capital letters and underscores.
    private static func reason(_ key: Substring, _ value: Substring) throws(FakeOptionError) -> String {
        guard !value.isEmpty, value.allSatisfy({ ("A"..."Z").contains($0) || $0 == "_" }) else {
            throw FakeOptionError(message: "fake option \(key)=\(value) needs a reason such as SAFETY")
        }
        return String(value)
    }

    private static func flag(_ key: Substring, _ value: Substring) throws(FakeOptionError) -> Bool {
        switch value {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw FakeOptionError(message: "fake option \(key)=\(value) needs 0 or 1")
        }
    }
}

extension FakeOptions {
    /// Whether `status` applies to this request: always, or with `times=N` for the first N
    /// requests whose last user message is `message`.
    func failsNow(_ message: String, stats: FakeUpstreamStats) async -> Bool {
        guard let times else { return true }
        return await stats.occurrence(of: message) <= times
    }
}

/// A malformed fake directive or `X-Fake` header; answered with HTTP 400.
struct FakeOptionError: Error, Equatable {
    let message: String
}

/// Finds and removes `[[fake ...]]` directives in message text.
enum FakeDirective {
    static let opening = "[[fake"
    static let closing = "]]"

    /// The argument text of every directive in `text`, in order, and `text` without them
    /// (trimmed of surrounding whitespace).
    static func extract(from text: String) -> (arguments: [Substring], remainder: String) {
        guard text.contains(opening) else {
            return ([], text)
        }
        var arguments: [Substring] = []
        var remainder = ""
        var rest = text[...]
        while let start = rest.firstRange(of: opening) {
            // `[[fake` must be followed by whitespace or the closing brackets.
            let afterOpening = rest[start.upperBound...]
            guard let end = afterOpening.firstRange(of: closing),
                afterOpening.first.map({ $0.isWhitespace || $0 == "]" }) == true
            else {
                remainder += rest[..<start.upperBound]
                rest = afterOpening
                continue
            }
            remainder += rest[..<start.lowerBound]
            arguments.append(afterOpening[..<end.lowerBound])
            rest = afterOpening[end.upperBound...]
        }
        remainder += rest
        return (arguments, remainder.trimmingWhitespace())
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        guard let first = self.firstIndex(where: { !$0.isWhitespace }),
            let last = self.lastIndex(where: { !$0.isWhitespace })
        else { return "" }
        return String(self[first...last])
    }
}
