/// The parts of an OpenAI Chat Completions request body that the fake upstream looks at.
///
/// Decoding is lenient: unknown keys are ignored, and message content that is neither a
/// string nor an array of content parts (tool calls, `null`) counts as no text.
struct ChatRequest: Decodable, Sendable {
    var model: String?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var messages: [Message]

    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?

        enum CodingKeys: String, CodingKey {
            case includeUsage = "include_usage"
        }
    }

    struct Message: Decodable, Sendable {
        var role: String?
        var content: Content?

        /// The text of the message: the string content, or its text parts joined by newlines.
        var text: String {
            switch self.content {
            case .text(let text): text
            case .parts(let parts): parts.compactMap(\.text).joined(separator: "\n")
            case .other, nil: ""
            }
        }
    }

    enum Content: Decodable, Sendable {
        case text(String)
        case parts([Part])
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else if let parts = try? container.decode([Part].self) {
                self = .parts(parts)
            } else {
                self = .other
            }
        }
    }

    /// An OpenAI content part; only `type: "text"` parts carry text.
    struct Part: Decodable, Sendable {
        var text: String?

        enum CodingKeys: String, CodingKey {
            case type
            case text
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let type = try container.decodeIfPresent(String.self, forKey: .type)
            self.text = type == "text" ? try container.decodeIfPresent(String.self, forKey: .text) : nil
        }
    }

    enum CodingKeys: String, CodingKey {
        case model
        case stream
        case streamOptions = "stream_options"
        case messages
    }

    /// The last message with role `user`.
    var lastUserMessage: Message? {
        self.messages.last { $0.role == "user" }
    }

    /// A deterministic stand-in for the prompt's token count: whitespace-separated words in
    /// all messages, with `lastUserText` (the directive-free text) standing in for the last user message.
    func promptWordCount(lastUserText: String) -> Int {
        let lastUserIndex = self.messages.lastIndex { $0.role == "user" }
        return self.messages.indices.reduce(0) { count, index in
            let text = index == lastUserIndex ? lastUserText : self.messages[index].text
            return count + text.split(whereSeparator: \.isWhitespace).count
        }
    }
}
