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
        // `cache` stays in `body` (the engine takes it out); checked here, before anything is written.
        if let value = body["cache"] { try Self.validateCache(value) }
        self.model = model
        self.store = store
        self.stream = stream
        self.includeUsage = includeUsage
        self.conversationID = conversationID
        self.body = body
    }

    /// The longest `cache.ttl_seconds` a request may ask for: a year, as for a model's own `cache`.
    public static let maxCacheTTLSeconds: Double = 31_536_000

    /// Chorus's `cache` field: `true`, `false`, null, or `{"ttl_seconds": N}` with N a number of
    /// seconds in (0, a year]. (A huge N once overflowed the expiry time and crashed the process.)
    public static func validateCache(_ value: JSONValue) throws {
        switch value {
        case .null, .bool:
            return
        case .object(let options):
            guard let ttl = options["ttl_seconds"], !ttl.isNull else { return }
            guard let seconds = ttl.doubleValue, seconds.isFinite, seconds > 0, seconds <= maxCacheTTLSeconds else {
                throw ChorusError.invalidRequest(
                    message: "'cache.ttl_seconds' must be a number of seconds above 0 and at most \(Int(maxCacheTTLSeconds)).",
                    param: "cache.ttl_seconds", code: "invalid_value")
            }
        default:
            throw ChorusError.invalidRequest(
                message: "Invalid type for 'cache': expected a boolean or an object with 'ttl_seconds', but got \(value.typeName).",
                param: "cache", code: "invalid_type")
        }
    }
}
