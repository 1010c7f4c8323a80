public import ChorusCore
import ChorusProviders
public import ChorusStore
public import Logging
import Synchronization
import Tracing

/// Runs one chat turn: commits the user message, rebuilds history from the database, calls the
/// model, and stores exactly one assistant message — complete, or partial with the reason.
///
/// Writes per normal turn: one for the user message (with the conversation), one for the answer.
/// Long streams add a checkpoint every `checkpointSeconds`.
public struct ChatEngine<Store: ConversationStore>: Sendable {
    public let store: Store
    public let models: ModelRegistry
    public let historyMessages: Int
    public let checkpointSeconds: Double
    /// For a request that does not say (`store`): keep the turn in a conversation.
    public let storeByDefault: Bool
    let logger: Logger
    /// Time to first token, gaps between tokens, tokens, upstream calls and errors, store failures.
    public let metrics: ChorusMetrics
    /// Where each turn's usage goes (nil: not recorded).
    public let usage: BufferedWriter<UsageRecord>?
    /// Where cached answers live (nil: no cache).
    public let cache: (any ResponseCacheStore)?

    public init(
        store: Store, models: ModelRegistry, historyMessages: Int, checkpointSeconds: Double, storeByDefault: Bool = true,
        metrics: ChorusMetrics = ChorusMetrics(enabled: false), usage: BufferedWriter<UsageRecord>? = nil,
        cache: (any ResponseCacheStore)? = nil, logger: Logger
    ) {
        self.usage = usage
        self.cache = cache
        self.store = store
        self.models = models
        self.historyMessages = historyMessages
        self.checkpointSeconds = checkpointSeconds
        self.storeByDefault = storeByDefault
        self.metrics = metrics
        self.logger = logger
    }

    /// The turn of a queued chat task: its user message was committed at submission; the history
    /// is rebuilt here, on the worker (from the task itself on the first attempt of a small new
    /// conversation, which holds nothing else yet). The assistant message id derives from the task id, so a
    /// task taken over by another worker still ends with exactly one assistant row.
    public func prepareTask(_ task: TaskRecord, conversationID: String) async throws -> PreparedTurn {
        guard let entry = models[task.model] else { throw ChorusError.modelNotFound(task.model) }
        var messages: [JSONValue] = task.params["instructions"]?.arrayValue ?? []
        if task.attempts <= 1, let carried = task.params["history"]?.arrayValue {
            // The batch started this conversation and carried its messages: nothing to read yet.
            messages += carried.suffix(historyMessages)
        } else {
            let history = try await store.history(conversationID: conversationID, ownerID: task.ownerID, limit: historyMessages)
            // In a fan-out, each model sees the user's messages and its own earlier answers (the
            // latest of them, where an answer was regenerated).
            var own = history.filter { ($0.role != "assistant" || $0.model == task.model) && $0.turnID != task.id }
            // A task answers the last user message (or tool results): an answer already after it
            // is the one a regenerate replaces.
            while let last = own.last, last.role == "assistant", last.toolCalls == nil { own.removeLast() }
            messages += ConversationHistory.upstreamMessages(own)
        }
        var body = task.params["body"]?.objectValue ?? [:]
        body["messages"] = .array(messages)
        let cache = CachePolicy.make(model: entry.configuration, body: &body, ownerID: task.ownerID, bypass: false)
        let conversation = Conversation(id: conversationID, ownerID: task.ownerID, title: nil, model: task.model, createdAt: task.createdAt, updatedAt: task.createdAt)
        var turn = PreparedTurn(
            requestID: task.id, ownerID: task.ownerID, model: entry.configuration.name, route: entry.route,
            fallbacks: entry.fallbacks, affinity: conversationID, upstreamStreaming: true,
            conversation: conversation, upstream: UpstreamRequest(body: body, requestID: task.id),
            assistantMessageID: "msg_" + task.id, startedAt: task.createdAt)
        turn.apiKeyID = task.params["billing"]?["api_key_id"]?.stringValue
        turn.cache = cache
        return turn
    }

    /// Validates the request against the model table and commits the turn's new messages.
    /// Throws before writing anything when the model or the conversation does not exist.
    ///
    /// Without `conversation_id` the client holds the history: its messages go upstream exactly as
    /// sent, and when the turn is stored they start a new conversation (one per request, holding
    /// the messages once). With `conversation_id`, only what came after the client's last assistant
    /// message is new; the history is rebuilt from the database. `store: false` writes nothing
    /// (a conversation it names is read, not changed).
    public func prepare(_ request: ChatRequest, ownerID: String, requestID: String, options: TurnOptions = TurnOptions()) async throws -> PreparedTurn {
        guard let entry = models[request.model] else { throw ChorusError.modelNotFound(request.model) }
        try entry.check(UpstreamRequest(body: request.body, requestID: requestID))
        let now = nowMilliseconds()
        let keep = request.store ?? storeByDefault
        let isInstruction = { (message: ChatMessage) in message.role == "system" || message.role == "developer" }
        var newMessages = request.messages.filter { !isInstruction($0) }
        if request.conversationID != nil, let lastAssistant = newMessages.lastIndex(where: { $0.role == "assistant" }) {
            newMessages = Array(newMessages[(lastAssistant + 1)...])
        }
        let stored = newMessages.map { StoredMessage(client: $0, ownerID: ownerID, turnID: requestID, now: now) }
        let title = newMessages.first { $0.role == "user" }.map { String($0.text.prefix(80)) }
        let start = TurnStart(
            ownerID: ownerID, conversationID: request.conversationID, newConversationID: Identifier.ordered("conv_"),
            title: title, model: entry.configuration.name, messages: stored, now: now)

        var conversation: Conversation?
        let upstreamMessages: [JSONValue]
        if let id = request.conversationID {
            if keep {
                conversation = try await startTurn(start)
            } else {
                guard try await store.conversation(id: id, ownerID: ownerID) != nil else {
                    throw ChorusError.notFound(what: "conversation", id: id)
                }
            }
            let history = try await store.history(conversationID: id, ownerID: ownerID, limit: historyMessages)
            upstreamMessages = request.messages.filter(isInstruction).map(\.json)
                + ConversationHistory.upstreamMessages(history)
                + (keep ? [] : newMessages.map(\.json))
        } else {
            if keep { conversation = try await startTurn(start) }
            upstreamMessages = request.messages.map(\.json)
        }
        var body = request.body
        body["messages"] = .array(upstreamMessages)
        let cache = CachePolicy.make(model: entry.configuration, body: &body, ownerID: ownerID, bypass: options.bypassCache)
        // A conversation keeps its deployment: a stored one by its id (from its first turn on), a
        // client that resends its history by how that history starts.
        let resent = request.messages.contains { $0.role == "assistant" }
        let affinity = request.conversationID ?? (resent ? nil : conversation?.id)
            ?? request.messages.first { $0.role == "user" }.map { String($0.text.prefix(512)) }
        var turn = PreparedTurn(
            requestID: requestID, ownerID: ownerID, model: entry.configuration.name, route: entry.route,
            fallbacks: entry.fallbacks, affinity: affinity, upstreamStreaming: entry.configuration.upstreamStreaming,
            conversation: conversation, upstream: UpstreamRequest(body: body, requestID: requestID),
            assistantMessageID: Identifier.ordered("msg_"), startedAt: now)
        turn.apiKeyID = options.apiKeyID
        turn.cache = cache
        return turn
    }

    /// A non-streamed turn.
    public func complete(_ turn: PreparedTurn) async throws -> CompletionOutput {
        if turn.upstreamStreaming {
            return try await stream(turn) { _ in }
        }
        let began = ContinuousClock.now
        if let cached = await cachedAnswer(turn) {
            try await finishAnswer(turn, cached, began: began, firstToken: nil)
            return cached
        }
        let result = OutputBox()
        do {
            try await routed(turn, started: { false }) { provider in
                result.set(try await provider.complete(turn.upstream))
            }
        } catch {
            recordUsage(turn, CompletionOutput(), began: began, firstToken: nil, outcome: "failed")
            await savePartial(turn, CompletionOutput(), error: error)
            throw error
        }
        let output = result.value
        try await finishAnswer(turn, output, began: began, firstToken: ContinuousClock.now - began)
        return output
    }

    /// A streamed turn. Cancelling the calling task is a client disconnect: the upstream call stops
    /// and the partial answer is saved with `reason=client_disconnected`.
    public func stream(_ turn: PreparedTurn, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws -> CompletionOutput {
        let progress = TurnProgress(checkpointSeconds: checkpointSeconds)
        let (metrics, gaps) = (self.metrics, self.metrics.tokenGaps(model: turn.model))
        let began = ContinuousClock.now
        if let cached = await cachedAnswer(turn) {
            for event in cached.replayEvents { try await onEvent(event) }
            try await finishAnswer(turn, cached, began: began, firstToken: nil)
            return cached
        }
        do {
            try await routed(turn, started: { progress.started }) { provider in
                try await provider.stream(turn.upstream) { event in
                    let applied = progress.apply(event)
                    if let since = applied.sincePrevious {
                        if applied.isFirstToken {
                            metrics.firstToken(model: turn.model, after: since)
                            UpstreamCallSpan.current?.addEvent("first_token")
                        } else {
                            gaps.record(since)
                        }
                    }
                    let checkpoint = applied.checkpoint
                    try await onEvent(event)
                    // Off the relay path: a slow database must not hold up the next token.
                    if let snapshot = checkpoint {
                        let engine = self
                        progress.checkpointStarted(Task {
                            do {
                                try await engine.save(turn, snapshot, status: .streaming, metadata: [:])
                            } catch {
                                engine.logger.warning("could not checkpoint a streaming answer", metadata: ["request_id": "\(turn.requestID)", "error": "\(error)"])
                            }
                        })
                    }
                }
            }
        } catch {
            await progress.checkpointsFinished()
            recordUsage(turn, progress.output, began: began, firstToken: progress.firstTokenAfter, outcome: progress.started ? "partial" : "failed")
            await savePartial(turn, progress.output, error: error)
            throw error
        }
        let output = progress.output
        if let usage = output.usage { metrics.tokens(model: turn.model, usage: usage) }
        // The final write comes after any checkpoint, so a late checkpoint cannot overwrite it.
        await progress.checkpointsFinished()
        try await finishAnswer(turn, output, began: began, firstToken: progress.firstTokenAfter)
        return output
    }

    /// Stores a complete answer. A request's client gets its answer even when that fails (the
    /// failure is logged and counted); a task's run fails, so that the task is tried again.
    func saveAnswer(_ turn: PreparedTurn, _ output: CompletionOutput) async throws {
        do {
            try await save(turn, output, status: .complete, metadata: [:])
        } catch let error where turn.gate == nil && !(error is CancellationError) {
            metrics.answerNotStored()
            logger.error("could not store a complete answer", metadata: ["request_id": "\(turn.requestID)", "error": "\(error)"])
        }
    }

    private func savePartial(_ turn: PreparedTurn, _ output: CompletionOutput, error: any Error) async {
        // A task run begun before its claim, whose claim was lost: the answer is not this run's to save.
        if let gate = turn.gate, await !gate.proceeds() { return }
        var metadata: [String: JSONValue] = ["partial": .bool(true)]
        if Task.isCancelled || error is CancellationError {
            metadata["reason"] = .string(CancellationNote.current?.reason ?? "client_disconnected")
        } else {
            let chorusError = (error as? ChorusError) ?? .internalError("\(error)")
            metadata["reason"] = .string(chorusError.code ?? "error")
            metadata["error"] = .object([
                "message": .string(chorusError.message), "type": .string(chorusError.type),
                "code": chorusError.code.map(JSONValue.string) ?? .null,
            ])
        }
        // The caller's task may be cancelled; the save must still happen, so it runs in its own task.
        let engine = self
        let partialMetadata = metadata
        let saved = Task {
            do {
                try await engine.save(turn, output, status: .partial, metadata: partialMetadata)
            } catch {
                engine.logger.error("could not save the partial answer", metadata: ["request_id": "\(turn.requestID)", "error": "\(error)"])
            }
        }
        await saved.value
        logger.info("turn ended early", metadata: ["request_id": "\(turn.requestID)", "reason": "\(metadata["reason"]?.stringValue ?? "")", "chars": "\(output.content.count)"])
    }

    /// The user message (with its conversation if new): one write, one span.
    private func startTurn(_ start: TurnStart) async throws -> Conversation {
        try await withSpan("store.write") { span in
            span.attributes["chorus.write"] = "user_message"
            return try await store.startTurn(start)
        }
    }

    private func save(_ turn: PreparedTurn, _ output: CompletionOutput, status: MessageStatus, metadata: [String: JSONValue]) async throws {
        guard let conversation = turn.conversation else { return }  // `store: false`
        try await turn.gate?.wait()
        var metadata = metadata
        if let reason = output.finishReason { metadata["finish_reason"] = .string(reason) }
        if let refusal = output.refusal { metadata["refusal"] = .string(refusal) }
        if let served = turn.servedBy.current {
            if served.model != turn.model { metadata["served_model"] = .string(served.model) }
            if let deployment = served.deployment { metadata["deployment"] = .string(deployment) }
            if served.cacheHit { metadata["cache"] = .string("hit") }
            if served.refused { metadata["refused"] = .bool(true) }
        }
        let refusedBy = turn.servedBy.refusedBy
        if !refusedBy.isEmpty { metadata["refused_by"] = .array(refusedBy.map(JSONValue.string)) }
        try await withSpan("store.write") { span in
            span.attributes["chorus.write"] = "assistant_message"
            span.attributes["chorus.message_status"] = status.rawValue
            try await store.saveAssistantMessage(StoredMessage(
                id: turn.assistantMessageID, conversationID: conversation.id, ownerID: turn.ownerID, role: "assistant",
                content: output.content, reasoning: output.reasoning.isEmpty ? nil : output.reasoning,
                toolCalls: output.toolCalls.isEmpty ? nil : .array(output.toolCalls.map(\.json)), model: turn.model,
                status: status, metadata: metadata, usage: output.usage, turnID: turn.requestID,
                createdAt: turn.startedAt, updatedAt: nowMilliseconds()))
        }
    }
}
