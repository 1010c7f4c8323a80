/// A whole tool call of an assistant message (OpenAI's `ChatCompletionMessageToolCall`).
public struct ToolCall: Sendable, Equatable {
    /// The position in the message's `tool_calls`, as the stream's deltas number it.
    public var index: Int
    public var id: String
    public var type: String
    public var name: String
    public var arguments: String

    public init(index: Int, id: String, type: String = "function", name: String, arguments: String) {
        self.index = index
        self.id = id
        self.type = type
        self.name = name
        self.arguments = arguments
    }

    /// `{"id", "type", "function": {"name", "arguments"}}`.
    public var json: JSONValue {
        .object([
            "id": .string(id), "type": .string(type),
            "function": .object(["name": .string(name), "arguments": .string(arguments)]),
        ])
    }

    /// Adds one chunk's `delta.tool_calls` to the calls so far, as the OpenAI SDKs accumulate them:
    /// a delta names its call by `index` (its position when absent, as in a non-streamed message);
    /// `id` and `type` are kept from the first delta that has them, `name` and `arguments` fragments
    /// are appended. Elements that are not objects are ignored.
    public static func assemble(_ deltas: JSONValue, into calls: inout [ToolCall]) {
        for (position, delta) in (deltas.arrayValue ?? []).enumerated() where delta.objectValue != nil {
            let index = delta["index"]?.intValue ?? position
            let slot: Int
            if let existing = calls.firstIndex(where: { $0.index == index }) {
                slot = existing
            } else {
                calls.append(ToolCall(index: index, id: "", type: "function", name: "", arguments: ""))
                calls.sort { $0.index < $1.index }
                slot = calls.firstIndex { $0.index == index }!
            }
            if let id = delta["id"]?.stringValue, calls[slot].id.isEmpty { calls[slot].id = id }
            if let type = delta["type"]?.stringValue { calls[slot].type = type }
            if let name = delta["function"]?["name"]?.stringValue { calls[slot].name += name }
            if let arguments = delta["function"]?["arguments"]?.stringValue { calls[slot].arguments += arguments }
        }
    }

    /// Calls from a stored or sent `tool_calls` array (whole calls, no `index`).
    public static func calls(from value: JSONValue?) -> [ToolCall] {
        var calls: [ToolCall] = []
        if let value { assemble(value, into: &calls) }
        return calls
    }
}
