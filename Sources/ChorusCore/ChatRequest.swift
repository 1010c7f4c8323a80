/// A validated `POST /v1/chat/completions` body.
///
/// Only the fields Chorus acts on are interpreted; the rest of `body` (tools, temperature,
/// response_format, …) is forwarded upstream untouched. Chorus's own fields (`conversation_id`,
/// `store`) are taken out of it.
public struct ChatRequest: Sendable {
    public static let roles: Set<String> = ["system", "developer", "user", "assistant", "tool", "function"]

    public var model: String
    public var messages: [ChatMessage]
    public var stream: Bool
    public var includeUsage: Bool
    /// Chorus extension: store the turn in this conversation and rebuild history from the database.
    public var conversationID: String?
    /// `store` as sent: whether to keep the turn in a conversation (nil: the configured default).
    public var store: Bool?
    /// The original body, minus Chorus's extensions.
    public var body: [String: JSONValue]

    public init(json: JSONValue) throws {
        guard case .object(var body) = json else {
            throw ChorusError.invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type")
        }
        guard let modelValue = body["model"] else {
            throw ChorusError.invalidRequest(message: "you must provide a model parameter", param: "model", code: "missing_required_parameter")
        }
        guard let model = modelValue.stringValue, !model.isEmpty else {
            throw ChorusError.invalidRequest(message: "Invalid type for 'model': expected a non-empty string, but got \(modelValue.typeName).", param: "model", code: "invalid_type")
        }
        guard let messagesValue = body["messages"] else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'messages'.", param: "messages", code: "missing_required_parameter")
        }
        guard let rawMessages = messagesValue.arrayValue else {
            throw ChorusError.invalidRequest(message: "Invalid type for 'messages': expected an array, but got \(messagesValue.typeName).", param: "messages", code: "invalid_type")
        }
        guard !rawMessages.isEmpty else {
            throw ChorusError.invalidRequest(message: "Invalid 'messages': empty array. Expected an array with minimum length 1.", param: "messages", code: "empty_array")
        }
        self.messages = try rawMessages.enumerated().map { index, value in try ChatMessage(json: value, index: index) }

        var stream = false
        if let value = body["stream"], !value.isNull {
            guard let flag = value.boolValue else {
                throw ChorusError.invalidRequest(message: "Invalid type for 'stream': expected a boolean, but got \(value.typeName).", param: "stream", code: "invalid_type")
            }
            stream = flag
        }
        var includeUsage = false
        if let options = body["stream_options"], !options.isNull {
            guard stream else {
                throw ChorusError.invalidRequest(message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.", param: "stream_options", code: "invalid_value")
            }
            guard case .object(let object) = options else {
                throw ChorusError.invalidRequest(message: "Invalid type for 'stream_options': expected an object, but got \(options.typeName).", param: "stream_options", code: "invalid_type")
            }
            if let flag = object["include_usage"], !flag.isNull {
                guard let value = flag.boolValue else {
                    throw ChorusError.invalidRequest(message: "Invalid type for 'stream_options.include_usage': expected a boolean, but got \(flag.typeName).", param: "stream_options.include_usage", code: "invalid_type")
                }
                includeUsage = value
            }
        }
        if let n = body["n"], !n.isNull, n.intValue != 1 {
            throw ChorusError.invalidRequest(message: "Only n=1 is supported.", param: "n", code: "unsupported_value")
        }
        var conversationID: String?
        if let value = body.removeValue(forKey: "conversation_id"), !value.isNull {
            guard let id = value.stringValue, !id.isEmpty else {
                throw ChorusError.invalidRequest(message: "Invalid type for 'conversation_id': expected a non-empty string, but got \(value.typeName).", param: "conversation_id", code: "invalid_type")
            }
            conversationID = id
        }
        var store: Bool?
        if let value = body.removeValue(forKey: "store"), !value.isNull {
            guard let flag = value.boolValue else {
                throw ChorusError.invalidRequest(message: "Invalid type for 'store': expected a boolean, but got \(value.typeName).", param: "store", code: "invalid_type")
            }
            store = flag
        }
        self.model = model
        self.store = store
        self.stream = stream
        self.includeUsage = includeUsage
        self.conversationID = conversationID
        self.body = body
    }
}

/// One message of a chat request, kept as JSON for forwarding plus its text for storage.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    /// `content` as sent: a string, an array of content parts, or null.
    public var content: JSONValue
    /// The whole message object (name, tool_calls, tool_call_id, …).
    public var json: JSONValue

    public init(role: String, text: String) {
        self.role = role
        self.content = .string(text)
        self.json = .object(["role": .string(role), "content": .string(text)])
    }

    public init(role: String, content: JSONValue) {
        self.role = role
        self.content = content
        self.json = .object(["role": .string(role), "content": content])
    }

    init(json: JSONValue, index: Int) throws {
        guard case .object(let object) = json else {
            throw ChorusError.invalidRequest(message: "Invalid type for 'messages[\(index)]': expected an object, but got \(json.typeName).", param: "messages[\(index)]", code: "invalid_type")
        }
        guard let role = object["role"]?.stringValue else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'messages[\(index)].role'.", param: "messages[\(index)].role", code: "missing_required_parameter")
        }
        guard ChatRequest.roles.contains(role) else {
            throw ChorusError.invalidRequest(message: "Invalid value: '\(role)'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool' and 'function'.", param: "messages[\(index)].role", code: "invalid_value")
        }
        let content = object["content"] ?? .null
        switch content {
        case .string: break
        case .array(let parts):
            for (partIndex, part) in parts.enumerated() where part["type"]?.stringValue == nil {
                throw ChorusError.invalidRequest(message: "Missing required parameter: 'messages[\(index)].content[\(partIndex)].type'.", param: "messages[\(index)].content[\(partIndex)].type", code: "missing_required_parameter")
            }
        case .null where role == "assistant" && (object["tool_calls"] != nil || object["function_call"] != nil || object["refusal"] != nil):
            break
        case .null:
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'messages[\(index)].content'.", param: "messages[\(index)].content", code: "missing_required_parameter")
        default:
            throw ChorusError.invalidRequest(message: "Invalid type for 'messages[\(index)].content': expected a string or an array of content parts, but got \(content.typeName).", param: "messages[\(index)].content", code: "invalid_type")
        }
        if let name = object["name"], name.stringValue == nil {
            throw ChorusError.invalidRequest(message: "Invalid type for 'messages[\(index)].name': expected a string, but got \(name.typeName).", param: "messages[\(index)].name", code: "invalid_type")
        }
        if role == "tool", object["tool_call_id"]?.stringValue == nil {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'messages[\(index)].tool_call_id'.", param: "messages[\(index)].tool_call_id", code: "missing_required_parameter")
        }
        if let calls = object["tool_calls"], !calls.isNull {
            try Self.validateToolCalls(calls, param: "messages[\(index)].tool_calls")
        }
        self.role = role
        self.content = content
        self.json = json
    }

    /// An assistant message's `tool_calls`: whole calls, each with an id and a function name.
    private static func validateToolCalls(_ calls: JSONValue, param: String) throws {
        guard let list = calls.arrayValue else {
            throw ChorusError.invalidRequest(message: "Invalid type for '\(param)': expected an array, but got \(calls.typeName).", param: param, code: "invalid_type")
        }
        for (index, call) in list.enumerated() {
            for field in ["id", "function.name"] {
                let value = field.split(separator: ".").reduce(Optional(call)) { $0?[String($1)] }
                guard value?.stringValue != nil else {
                    throw ChorusError.invalidRequest(message: "Missing required parameter: '\(param)[\(index)].\(field)'.", param: "\(param)[\(index)].\(field)", code: "missing_required_parameter")
                }
            }
        }
    }

    /// The assistant's `tool_calls`, as sent.
    public var toolCalls: JSONValue? {
        guard let calls = json["tool_calls"], !calls.isNull else { return nil }
        return calls
    }

    /// A tool message's `tool_call_id`.
    public var toolCallID: String? { json["tool_call_id"]?.stringValue }

    /// The participant's `name`.
    public var name: String? { json["name"]?.stringValue }

    /// The text of the message: the string content, or its text parts joined.
    public var text: String {
        switch content {
        case .string(let text): return text
        case .array(let parts): return parts.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined(separator: "\n")
        default: return ""
        }
    }

    /// True when the content has parts other than text (images, files).
    public var hasNonTextParts: Bool {
        content.arrayValue?.contains { $0["type"]?.stringValue != "text" } ?? false
    }
}

/// Per-model deadlines, in seconds. Reasoning models need 300 s and more for `total`.
public struct ModelTimeouts: Sendable, Equatable {
    public var connect: Double
    public var firstToken: Double
    public var betweenTokens: Double
    public var total: Double

    public init(connect: Double = 10, firstToken: Double = 60, betweenTokens: Double = 30, total: Double = 600) {
        self.connect = connect
        self.firstToken = firstToken
        self.betweenTokens = betweenTokens
        self.total = total
    }
}
