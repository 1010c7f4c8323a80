/// The parts of an OpenAI Chat Completions request body that the fake upstream looks at.
///
/// Decoding is lenient: unknown keys are ignored, message content that is neither a string
/// nor an array of content parts (tool calls, `null`) counts as no text, tools that are not
/// well-formed `function` tools are dropped, and a `tool_choice` or `response_format` of a
/// type the fake does not know counts as absent.
struct ChatRequest: Decodable, Sendable {
    var model: String?
    var stream: Bool?
    var streamOptions: StreamOptions?
    var messages: [Message]
    /// The `function` tools offered, in request order (other tool types are dropped).
    var tools: Tools?
    var toolChoice: ToolChoice?
    var parallelToolCalls: Bool?
    var logprobs: Bool?
    var topLogprobs: Int?
    var responseFormat: ResponseFormat?
    var stop: StopSequences?
    var maxCompletionTokens: Int?
    var maxTokens: Int?
    var serviceTier: String?

    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?

        enum CodingKeys: String, CodingKey {
            case includeUsage = "include_usage"
        }
    }

    struct Message: Decodable, Sendable {
        var role: String?
        var content: Content?
        /// On a `role: "tool"` message: the id of the call it answers.
        var toolCallID: String?

        enum CodingKeys: String, CodingKey {
            case role
            case content
            case toolCallID = "tool_call_id"
        }

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

    /// The `tools` array, keeping only `{"type":"function","function":{"name",…}}` entries.
    struct Tools: Decodable, Sendable {
        var functions: [Function]

        struct Function: Decodable, Sendable {
            var name: String
            /// The JSON schema of the arguments; `nil` when absent or not an object schema.
            var parameters: ObjectSchema?
        }

        private struct Entry: Decodable {
            var type: String?
            var function: Function?
        }

        init(from decoder: any Decoder) throws {
            var container = try decoder.unkeyedContainer()
            var functions: [Function] = []
            while !container.isAtEnd {
                let entry = try? container.decode(Entry.self)
                if let entry, entry.type == nil || entry.type == "function", let function = entry.function {
                    functions.append(function)
                } else if entry == nil {
                    // Skip the element that failed to decode.
                    _ = try container.decode(Skipped.self)
                }
            }
            self.functions = functions
        }
    }

    /// `"none"`, `"auto"`, `"required"`, or `{"type":"function","function":{"name":X}}`.
    enum ToolChoice: Decodable, Sendable, Equatable {
        case none
        case auto
        case required
        case function(name: String)

        private struct Named: Decodable {
            struct Function: Decodable {
                var name: String
            }
            var type: String?
            var function: Function?
        }

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let mode = try? container.decode(String.self) {
                switch mode {
                case "none": self = .none
                case "required": self = .required
                default: self = .auto
                }
            } else if let named = try? container.decode(Named.self), named.type == "function", let function = named.function {
                self = .function(name: function.name)
            } else {
                self = .auto
            }
        }
    }

    /// `{"type":"text"|"json_object"|"json_schema","json_schema":{"name","schema"}}`.
    struct ResponseFormat: Decodable, Sendable {
        var type: String?
        var jsonSchema: JSONSchema?

        struct JSONSchema: Decodable, Sendable {
            var name: String?
            var schema: ObjectSchema?
        }

        enum CodingKeys: String, CodingKey {
            case type
            case jsonSchema = "json_schema"
        }
    }

    /// `stop`: one string or an array of strings.
    struct StopSequences: Decodable, Sendable {
        var values: [String]

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let one = try? container.decode(String.self) {
                self.values = [one]
            } else {
                self.values = (try? container.decode([String].self)) ?? []
            }
        }
    }

    /// Any JSON value, decoded only to step over it.
    private struct Skipped: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    enum CodingKeys: String, CodingKey {
        case model
        case stream
        case streamOptions = "stream_options"
        case messages
        case tools
        case toolChoice = "tool_choice"
        case parallelToolCalls = "parallel_tool_calls"
        case logprobs
        case topLogprobs = "top_logprobs"
        case responseFormat = "response_format"
        case stop
        case maxCompletionTokens = "max_completion_tokens"
        case maxTokens = "max_tokens"
        case serviceTier = "service_tier"
    }

    /// The last message with role `user`.
    var lastUserMessage: Message? {
        self.messages.last { $0.role == "user" }
    }

    /// The `role: "tool"` messages at the end of the conversation, in order (empty when the
    /// last message is not a tool result).
    var trailingToolMessages: ArraySlice<Message> {
        let start = self.messages.lastIndex { $0.role != "tool" }.map { $0 + 1 } ?? self.messages.startIndex
        return self.messages[start...]
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
