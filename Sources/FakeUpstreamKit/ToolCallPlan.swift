/// The tool calls a request is answered with, instead of text.
///
/// A request gets tool calls when it offers `function` tools, its `tool_choice` is not
/// `"none"` and its last message is not a tool result (so a client that sends the results
/// back gets a text answer, ending the loop). Everything is predictable from the request:
/// - how many: the fake option `tool_calls=N` (default 1; 0 answers with text instead),
///   at most 1 when `parallel_tool_calls` is `false`;
/// - call `i` calls the function `tool_choice` names, else `tools[i % tools.count]`;
/// - its id is `call_<S>_<i>`, S being the request's sequence number (as in `chatcmpl-fake-<S>`);
/// - its arguments are `ObjectSchema.sampleJSON(index: i)` of the function's `parameters`
///   (`{}` without them), streamed in fragments of at most 8 characters. Each fragment is
///   one completion token.
struct ToolCallPlan: Sendable {
    struct Call: Sendable {
        let index: Int
        let id: String
        let name: String
        /// The arguments JSON in the fragments it streams in.
        let fragments: [String]

        var arguments: String { self.fragments.joined() }
    }

    /// One streamed chunk: a call's header (id, type, name, empty arguments) or one fragment
    /// of its arguments.
    enum Chunk: Sendable {
        case header(call: Int)
        case arguments(call: Int, fragment: Int)
    }

    let calls: [Call]
    /// Every chunk of the stream, in order.
    let chunks: [Chunk]
    /// Argument fragments in all calls: the completion tokens.
    let fragmentCount: Int

    init(calls: [Call]) {
        self.calls = calls
        var chunks: [Chunk] = []
        for call in calls {
            chunks.append(.header(call: call.index))
            for fragment in call.fragments.indices {
                chunks.append(.arguments(call: call.index, fragment: fragment))
            }
        }
        self.chunks = chunks
        self.fragmentCount = chunks.count - calls.count
    }

    /// The tool calls for `chat`, or `nil` when it should be answered with text.
    init?(for chat: ChatRequest, count: Int, sequence: Int) {
        guard let functions = chat.tools?.functions, !functions.isEmpty,
            chat.toolChoice != ChatRequest.ToolChoice.none,
            chat.messages.last?.role != "tool"
        else { return nil }
        let count = chat.parallelToolCalls == false ? min(count, 1) : count
        guard count > 0 else { return nil }
        let calls = (0..<count).map { index in
            let function: (name: String, parameters: ObjectSchema?)
            if case .function(let name) = chat.toolChoice {
                function = (name, functions.first { $0.name == name }?.parameters)
            } else {
                let tool = functions[index % functions.count]
                function = (tool.name, tool.parameters)
            }
            let arguments = (function.parameters ?? ObjectSchema()).sampleJSON(index: index)
            return Call(
                index: index,
                id: "call_\(sequence)_\(index)",
                name: function.name,
                fragments: AnswerTokens.fragmentStrings(of: arguments)
            )
        }
        self.init(calls: calls)
    }

    /// The calls cut after `limit` argument fragments (`max_completion_tokens`): later calls
    /// are dropped whole, the call holding the last fragment kept keeps its header.
    func truncated(toFragments limit: Int) -> ToolCallPlan {
        var remaining = limit
        var calls: [Call] = []
        for call in self.calls where remaining > 0 {
            let kept = Array(call.fragments.prefix(remaining))
            remaining -= kept.count
            calls.append(Call(index: call.index, id: call.id, name: call.name, fragments: kept))
        }
        return ToolCallPlan(calls: calls)
    }
}
