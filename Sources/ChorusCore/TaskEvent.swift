/// What a task tells its followers, in order. `seq` starts at 1 and has no gaps.
public struct TaskEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// Thinking text.
        case thinking
        /// Answer text.
        case answer
        /// `data` carries one chunk's `tool_calls` deltas, as the model sent them (the whole calls
        /// are in the result).
        case toolCalls = "tool_calls"
        /// `data` carries `current`/`total` (and, after a worker took over a task, `restarted: true`:
        /// the answer starts again).
        case progress
        /// One line a command task printed (`token`); `data.stream` says `stdout` or `stderr`.
        case log
        /// The end: `data` carries the result (for chat: the whole answer and reasoning).
        case finish
        /// The end, failed or cancelled: `data` carries the error.
        case error
    }

    public var seq: Int
    public var taskID: String
    public var kind: Kind
    public var token: String
    public var data: JSONValue?

    public init(seq: Int, taskID: String, kind: Kind, token: String = "", data: JSONValue? = nil) {
        self.seq = seq
        self.taskID = taskID
        self.kind = kind
        self.token = token
        self.data = data
    }

    public var isTerminal: Bool { kind == .finish || kind == .error }

    /// `{"seq","type","token","task_id","data"?}` — the SSE `data:` and WebSocket message.
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "seq": .int(seq), "type": .string(kind.rawValue), "token": .string(token), "task_id": .string(taskID),
        ]
        if let data { object["data"] = data }
        return .object(object)
    }

    public init(json: JSONValue) throws {
        guard let seq = json["seq"]?.intValue, let taskID = json["task_id"]?.stringValue,
              let kind = json["type"]?.stringValue.flatMap(Kind.init(rawValue:))
        else { throw ChorusError.internalError("malformed task event") }
        self.init(seq: seq, taskID: taskID, kind: kind, token: json["token"]?.stringValue ?? "", data: json["data"])
    }
}
