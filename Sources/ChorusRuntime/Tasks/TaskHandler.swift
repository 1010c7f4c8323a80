import ChorusCore
import ChorusStore

/// What a running task can tell the world.
public struct TaskRunContext: Sendable {
    public let task: TaskRecord
    let emitEvent: @Sendable (TaskEvent.Kind, String, JSONValue?) async throws -> Void
    let reportProgress: @Sendable (Int, Int?) async throws -> Void
    /// For a run begun before its claim was won: what its writes wait for. Nil for a run that
    /// began after its claim.
    public internal(set) var gate: RunGate?

    public init(task: TaskRecord, emit: @escaping @Sendable (TaskEvent.Kind, String, JSONValue?) async throws -> Void, progress: @escaping @Sendable (Int, Int?) async throws -> Void) {
        self.task = task
        self.emitEvent = emit
        self.reportProgress = progress
    }

    /// A thinking or answer token, or any other event, to every follower of the task.
    public func emit(_ kind: TaskEvent.Kind, token: String = "", data: JSONValue? = nil) async throws {
        try await emitEvent(kind, token, data)
    }

    /// Celery-style progress: stored on the task and sent as a `progress` event.
    public func progress(current: Int, total: Int?) async throws {
        try await reportProgress(current, total)
    }
}

/// A kind of task: a Swift handler with progress and a result. Cancellation arrives as task
/// cancellation; a handler saves what it must before returning.
public protocol TaskHandler: Sendable {
    var type: String { get }
    /// Whether a worker may begin a new task's run while its claim is on the way (from the copy its
    /// queue entry carries), and abandon it when the claim is lost. Only for a handler whose every
    /// effect goes through its context (events, progress) or waits for `TaskRunContext.gate`, as
    /// the chat engine's writes do: nothing it does before the claim is won may be seen. No by default.
    var startsBeforeClaim: Bool { get }
    /// Checks `params` at submission (throw `ChorusError.invalidRequest` for a 400).
    func validate(params: JSONValue) throws
    func run(_ context: TaskRunContext) async throws -> JSONValue
}

extension TaskHandler {
    public var startsBeforeClaim: Bool { false }
}

/// `chat`: one model's answer in a conversation (a batch is one of these per model).
public struct ChatTaskHandler<Store: ConversationStore>: TaskHandler {
    public let type = "chat"
    /// The upstream call starts before the claim is won (it is on the path to the first token);
    /// the answer's writes wait for the claim, and a lost claim cancels the call.
    public var startsBeforeClaim: Bool { true }
    let engine: ChatEngine<Store>
    /// Charges the answer's usage to the submitter's token limits and budgets.
    let accounts: AuthService?

    public init(engine: ChatEngine<Store>, accounts: AuthService? = nil) {
        self.engine = engine
        self.accounts = accounts
    }

    public func validate(params: JSONValue) throws {}

    public func run(_ context: TaskRunContext) async throws -> JSONValue {
        let task = context.task
        guard let conversationID = task.conversationID else {
            throw ChorusError.invalidRequest(message: "a chat task needs a conversation", param: "conversation_id", code: nil)
        }
        var turn = try await engine.prepareTask(task, conversationID: conversationID)
        turn.gate = context.gate
        let output = try await engine.stream(turn) { event in
            switch event {
            case .reasoning(let text): try await context.emit(.thinking, token: text)
            case .content(let text): try await context.emit(.answer, token: text)
            case .toolCalls(let calls): try await context.emit(.toolCalls, data: calls)
            case .refusal, .logprobs, .metadata, .finish, .usage: break
            }
        }
        if let accounts, let usage = output.usage, let billing = task.params["billing"], billing != .null {
            await accounts.settle(billing: billing, tokens: usage.totalTokens)
        }
        var result: [String: JSONValue] = [
            "content": .string(output.content),
            "reasoning_content": output.reasoning.isEmpty ? .null : .string(output.reasoning),
            "finish_reason": .string(CompletionEnvelope.openAIFinishReason(output.finishReason)),
            "conversation_id": .string(conversationID),
            "model": .string(task.model),
        ]
        if !output.toolCalls.isEmpty { result["tool_calls"] = .array(output.toolCalls.map(\.json)) }
        if let refusal = output.refusal { result["refusal"] = .string(refusal) }
        if let usage = output.usage { result["usage"] = usage.json }
        return .object(result)
    }
}

/// `conversation.export`: a conversation as Markdown or JSON.
public struct ConversationExportHandler<Store: ConversationStore>: TaskHandler {
    public let type = "conversation.export"
    let store: Store

    public init(store: Store) {
        self.store = store
    }

    public func validate(params: JSONValue) throws {
        guard params["conversation_id"]?.stringValue != nil else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'params.conversation_id'.", param: "params.conversation_id", code: "missing_required_parameter")
        }
        if let format = params["format"], !["markdown", "json"].contains(format.stringValue ?? "") {
            throw ChorusError.invalidRequest(message: "'params.format' must be 'markdown' or 'json'.", param: "params.format", code: "invalid_value")
        }
    }

    public func run(_ context: TaskRunContext) async throws -> JSONValue {
        let id = context.task.params["conversation_id"]?.stringValue ?? ""
        guard let conversation = try await store.conversation(id: id, ownerID: context.task.ownerID) else {
            throw ChorusError.notFound(what: "conversation", id: id)
        }
        let messages = try await store.messages(conversationID: id, ownerID: context.task.ownerID)
        try await context.progress(current: 0, total: messages.count)
        let format = context.task.params["format"]?.stringValue ?? "markdown"
        if format == "json" {
            let items: [JSONValue] = messages.map { message in
                var item: [String: JSONValue] = [
                    "role": .string(message.role), "content": .string(message.content),
                    "reasoning_content": message.reasoning.map(JSONValue.string) ?? .null, "model": message.model.map(JSONValue.string) ?? .null,
                ]
                if let calls = message.toolCalls { item["tool_calls"] = calls }
                if let id = message.toolCallID { item["tool_call_id"] = .string(id) }
                return .object(item)
            }
            try await context.progress(current: messages.count, total: messages.count)
            return .object(["format": .string("json"), "conversation_id": .string(id), "messages": .array(items)])
        }
        var markdown = "# \(conversation.title ?? "Conversation \(id)")\n"
        for (index, message) in messages.enumerated() {
            markdown += "\n## \(message.role)\(message.model.map { " (\($0))" } ?? "")\n\n"
            if let reasoning = message.reasoning, !reasoning.isEmpty {
                markdown += "<details><summary>Thinking</summary>\n\n\(reasoning)\n\n</details>\n\n"
            }
            markdown += message.content + "\n"
            try await context.progress(current: index + 1, total: messages.count)
        }
        return .object(["format": .string("markdown"), "conversation_id": .string(id), "content": .string(markdown)])
    }
}
