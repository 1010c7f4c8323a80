public import ChorusCore
public import ChorusStore

/// `chat`: one model's answer in a conversation (a batch is one of these per model).
public struct ChatTaskHandler<Store: ConversationStore>: TaskHandler {
    public let type = "chat"
    /// The upstream call starts before the claim is won (it is on the path to the first token);
    /// the answer's writes wait for the claim, and a lost claim cancels the call.
    public var startsBeforeClaim: Bool { true }
    let engine: ChatEngine<Store>
    /// Charges the answer's usage to the submitter's token limits and budgets.
    let accounts: AuthService?
    /// Caps how many of a batch's tasks run at once, when the batch asked for it.
    let slots: any BatchSlots

    public init(engine: ChatEngine<Store>, accounts: AuthService? = nil, slots: any BatchSlots = InProcessBatchSlots()) {
        self.engine = engine
        self.accounts = accounts
        self.slots = slots
    }

    public func validate(params: JSONValue) throws {}

    public func run(_ context: TaskRunContext) async throws -> JSONValue {
        let task = context.task
        if let limit = task.params["batch_concurrency"]?.intValue, let batch = task.batchID {
            return try await slots.withSlot(batch: batch, task: task.id, limit: limit) { try await answer(context) }
        }
        return try await answer(context)
    }

    private func answer(_ context: TaskRunContext) async throws -> JSONValue {
        let task = context.task
        guard let conversationID = task.conversationID else {
            throw ChorusError.invalidRequest(message: "a chat task needs a conversation", param: "conversation_id", code: nil)
        }
        var turn = try await engine.prepareTask(task, conversationID: conversationID)
        turn.gate = context.gate
        var output: CompletionOutput
        while true {
            output = try await engine.stream(turn) { event in
                switch event {
                case .reasoning(let text): try await context.emit(.thinking, token: text)
                case .content(let text): try await context.emit(.answer, token: text)
                case .toolCalls(let calls): try await context.emit(.toolCalls, data: calls)
                case .refusal, .logprobs, .metadata, .finish, .usage: break
                }
            }
            // A refusal (the model's `refusal_patterns`) goes to the next fallback; followers are
            // told the answer starts again, as after a takeover, and the stored answer is replaced.
            guard turn.servedBy.current?.refused == true, let next = turn.fallingBack() else { break }
            try await context.emit(.progress, data: .object([
                "restarted": .bool(true), "reason": .string("refused"), "model": .string(next.route.name),
            ]))
            turn = next
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
        if let served = turn.servedBy.current?.model, served != task.model { result["served_model"] = .string(served) }
        if !output.toolCalls.isEmpty { result["tool_calls"] = .array(output.toolCalls.map(\.json)) }
        if let refusal = output.refusal { result["refusal"] = .string(refusal) }
        if let usage = output.usage { result["usage"] = usage.json }
        return .object(result)
    }
}
