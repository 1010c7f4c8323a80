import ChorusCore
import ChorusStore
import Logging

extension ChatEngine {
    /// The cached answer to this turn, if its policy allows reading and one is there. A cache
    /// that fails is a miss: the model answers instead.
    func cachedAnswer(_ turn: PreparedTurn) async -> CompletionOutput? {
        guard let policy = turn.cache, policy.read, let cache else { return nil }
        do {
            guard let text = try await cache.cached(key: policy.key), let output = CompletionOutput(cached: text) else { return nil }
            turn.servedBy.set(.init(model: turn.model, deployment: nil, cacheHit: true))
            metrics.cacheLookup(model: turn.model, hit: true)
            return output
        } catch {
            logger.warning("the response cache could not be read", metadata: ["request_id": "\(turn.requestID)", "error": "\(error)"])
            return nil
        }
    }

    /// A complete answer: judged against the serving model's refusal patterns, cached when its
    /// policy says, counted in usage, and stored.
    func finishAnswer(_ turn: PreparedTurn, _ output: CompletionOutput, began: ContinuousClock.Instant, firstToken: Duration?) async throws {
        let route = turn.servingRoute
        if turn.servedBy.current?.cacheHit != true {
            if route.isRefusal(output.content) {
                turn.servedBy.markRefused()
                logger.info("the answer matched a refusal pattern", metadata: ["request_id": "\(turn.requestID)", "model": "\(route.name)"])
            } else if let policy = turn.cache, let cache, output.finishReason != "content_filter" {
                metrics.cacheLookup(model: turn.model, hit: false)
                if let text = output.cachedText {
                    do {
                        try await cache.cache(key: policy.key, model: turn.model, value: text, ttlSeconds: policy.ttlSeconds)
                    } catch {
                        logger.warning("the response cache could not be written", metadata: ["request_id": "\(turn.requestID)", "error": "\(error)"])
                    }
                }
            }
        }
        recordUsage(turn, output, began: began, firstToken: firstToken, outcome: turn.servedBy.current?.refused == true ? "refused" : "complete")
        try await saveAnswer(turn, output)
    }

    func recordUsage(_ turn: PreparedTurn, _ output: CompletionOutput, began: ContinuousClock.Instant, firstToken: Duration?, outcome: String) {
        guard let usage else { return }
        let served = turn.servedBy.current
        let route = turn.servingRoute
        let tokens = output.usage ?? Usage(promptTokens: 0, completionTokens: 0)
        // A cached answer costs nothing: no model was called.
        let cost = route.configuration.price.map { served?.cacheHit == true ? 0 : $0.cost(tokens) }
        func milliseconds(_ duration: Duration) -> Int64 {
            duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        }
        usage.record(UsageRecord(
            id: Identifier.ordered("use_"), ownerID: turn.ownerID, apiKeyID: turn.apiKeyID, model: turn.model,
            servedModel: served?.model ?? turn.model, deployment: served?.deployment,
            promptTokens: tokens.promptTokens, completionTokens: tokens.completionTokens,
            reasoningTokens: tokens.completionTokensDetails?["reasoning_tokens"]?.intValue ?? 0,
            timeToFirstTokenMilliseconds: firstToken.map(milliseconds), durationMilliseconds: milliseconds(ContinuousClock.now - began),
            cacheHit: served?.cacheHit == true, cost: cost, outcome: outcome, createdAt: nowMilliseconds()))
    }
}

extension CompletionOutput {
    /// This answer as the cache keeps it (nil if it cannot be encoded).
    var cachedText: String? {
        var object: [String: JSONValue] = [
            "content": .string(content), "finish_reason": finishReason.map(JSONValue.string) ?? .null,
        ]
        if !reasoning.isEmpty { object["reasoning"] = .string(reasoning) }
        if let refusal { object["refusal"] = .string(refusal) }
        if !toolCalls.isEmpty { object["tool_calls"] = .array(toolCalls.map(\.json)) }
        if let usage { object["usage"] = usage.json }
        return (try? JSONValue.object(object).encoded()).map { String(decoding: $0, as: UTF8.self) }
    }

    /// An answer read back from the cache.
    init?(cached text: String) {
        guard let json = try? JSONValue.parse(Array(text.utf8)), json.objectValue != nil else { return nil }
        self.init()
        for event in Self.events(of: json) { apply(event) }
    }

    /// The events that deliver this answer as a stream: reasoning, content, refusal, tool calls,
    /// usage, finish — what a client of a cached answer sees, streamed or not.
    var replayEvents: [ProviderEvent] {
        var events: [ProviderEvent] = []
        if !reasoning.isEmpty { events.append(.reasoning(reasoning)) }
        if !content.isEmpty { events.append(.content(content)) }
        if let refusal { events.append(.refusal(refusal)) }
        if !toolCalls.isEmpty { events.append(.toolCalls(Self.indexed(toolCalls.map(\.json)))) }
        if let usage { events.append(.usage(usage)) }
        events.append(.finish(finishReason ?? "stop"))
        return events
    }

    /// Tool calls as stream deltas number them.
    private static func indexed(_ calls: [JSONValue]) -> JSONValue {
        .array(calls.enumerated().map { index, call in
            var object = call.objectValue ?? [:]
            object["index"] = .int(index)
            return .object(object)
        })
    }

    private static func events(of json: JSONValue) -> [ProviderEvent] {
        var events: [ProviderEvent] = []
        if let reasoning = json["reasoning"]?.stringValue { events.append(.reasoning(reasoning)) }
        if let content = json["content"]?.stringValue, !content.isEmpty { events.append(.content(content)) }
        if let refusal = json["refusal"]?.stringValue { events.append(.refusal(refusal)) }
        if let calls = json["tool_calls"]?.arrayValue { events.append(.toolCalls(indexed(calls))) }
        if let usage = json["usage"], let prompt = usage["prompt_tokens"]?.intValue {
            events.append(.usage(Usage(
                promptTokens: prompt, completionTokens: usage["completion_tokens"]?.intValue ?? 0,
                promptTokensDetails: usage["prompt_tokens_details"], completionTokensDetails: usage["completion_tokens_details"])))
        }
        events.append(.finish(json["finish_reason"]?.stringValue ?? "stop"))
        return events
    }
}
