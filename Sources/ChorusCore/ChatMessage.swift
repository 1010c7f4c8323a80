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
