/// What one completion says, decided once per request from the body and the fake options.
///
/// Answer token `i` is `"t\(i) "` and reasoning token `i` is `"r\(i) "`, so a test can predict
/// the full text; with `echo=1` the answer is the echo line split into word tokens.
struct CompletionPlan: Sendable {
    let id: String
    let created: Int
    /// The model name as a JSON string literal (quotes included).
    let quotedModel: String
    let answer: AnswerTokens
    let reasoningCount: Int
    let thinkTags: Bool
    let promptTokens: Int

    var completionTokens: Int { self.answer.count + self.reasoningCount }

    static func reasoningToken(_ index: Int) -> String { "r\(index) " }

    /// All reasoning tokens concatenated.
    var reasoningText: String {
        var text = ""
        for index in 0..<self.reasoningCount {
            text += Self.reasoningToken(index)
        }
        return text
    }

    /// The message content of a non-streamed answer.
    var contentText: String {
        let answer = self.answer.fullText
        return self.thinkTags ? "<think>" + self.reasoningText + "</think>" + answer : answer
    }

    /// `usage` as a JSON object.
    var usageJSON: String {
        var json = """
            {"prompt_tokens":\(promptTokens),"completion_tokens":\(completionTokens),\
            "total_tokens":\(promptTokens + completionTokens)
            """
        if self.reasoningCount > 0 {
            json += #","completion_tokens_details":{"reasoning_tokens":\#(reasoningCount)}"#
        }
        return json + "}"
    }

    /// The body of a non-streamed `chat.completion`.
    func completionJSON(includeUsage: Bool) -> String {
        var json = #"{"id":"\#(id)","object":"chat.completion","created":\#(created),"model":\#(quotedModel),"#
        json += #""choices":[{"index":0,"message":{"role":"assistant","content":"#
        JSONText.appendString(self.contentText, to: &json)
        if self.reasoningCount > 0 && !self.thinkTags {
            json += #","reasoning_content":"#
            JSONText.appendString(self.reasoningText, to: &json)
        }
        json += #","refusal":null},"logprobs":null,"finish_reason":"stop"}]"#
        if includeUsage {
            json += #","usage":"# + self.usageJSON
        }
        return json + "}"
    }
}

/// The answer's tokens: counted (`t0 t1 ...`) or the words of an echo line.
enum AnswerTokens: Sendable {
    case counted(Int)
    case words([String])

    var count: Int {
        switch self {
        case .counted(let count): count
        case .words(let words): words.count
        }
    }

    subscript(index: Int) -> String {
        switch self {
        case .counted: "t\(index) "
        case .words(let words): words[index]
        }
    }

    var fullText: String {
        switch self {
        case .counted(let count):
            var text = ""
            text.reserveCapacity(count * 4)
            for index in 0..<count {
                text += "t\(index) "
            }
            return text
        case .words(let words):
            return words.joined()
        }
    }

    /// Splits `text` into tokens that each hold one word and the whitespace after it, so the
    /// tokens concatenate back to exactly `text`.
    static func words(of text: String) -> AnswerTokens {
        var words: [String] = []
        var current = ""
        var inWhitespace = false
        for character in text {
            if character.isWhitespace {
                inWhitespace = true
            } else if inWhitespace {
                words.append(current)
                current = ""
                inWhitespace = false
            }
            current.append(character)
        }
        if !current.isEmpty {
            words.append(current)
        }
        return .words(words)
    }
}
