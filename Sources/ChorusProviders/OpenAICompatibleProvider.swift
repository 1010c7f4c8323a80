import AsyncHTTPClient
import ChorusCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Any server that speaks OpenAI's Chat Completions API: OpenAI, DashScope compatible mode,
/// DeepSeek, vLLM, SGLang, Ollama, llama.cpp's server, OpenRouter.
public struct OpenAICompatibleProvider: ChatProvider {
    public let endpoint: any UpstreamEndpoint
    public let upstreamModel: String
    public let apiKey: String?
    public let timeouts: ModelTimeouts
    let clients: UpstreamClients
    let logger: Logger
    private let streamRequests = StreamRequests()

    /// Largest upstream response body accepted for a non-streamed completion or an error.
    static let maxBodyBytes = 32 * 1024 * 1024

    public init(endpoint: any UpstreamEndpoint, upstreamModel: String, apiKey: String?, timeouts: ModelTimeouts, clients: UpstreamClients, logger: Logger) {
        self.endpoint = endpoint
        self.upstreamModel = upstreamModel
        self.apiKey = apiKey
        self.timeouts = timeouts
        self.clients = clients
        self.logger = logger
    }

    /// The logger handed to async-http-client, which logs at debug and trace only but sets three
    /// metadata keys on the logger of every request: Chorus's own when that would print, else none.
    private var clientLogger: Logger? { logger.logLevel <= .debug ? logger : nil }

    /// A request with tools to a server known not to call them would be answered as if it had
    /// none (llama.cpp's server ignores tools its model's chat template cannot render).
    public func check(_ request: UpstreamRequest) throws {
        let wantsTools = !(request.body["tools"]?.arrayValue?.isEmpty ?? true) && request.body["tool_choice"] != .string("none")
        guard wantsTools, endpoint.callsTools == false else { return }
        throw ChorusError.invalidRequest(
            message: "This model cannot call tools: its server's chat template does not support them (llama.cpp reports supports_tools: false). Give the model a chat template with tool calls (`extra_args: [--chat-template-file, FILE]`) or use a model that supports them.",
            param: "tools", code: "tools_not_supported")
    }

    public func complete(_ request: UpstreamRequest) async throws -> CompletionOutput {
        var body = request.body
        body["stream"] = .bool(false)
        body["stream_options"] = nil
        let httpRequest = try await makeRequest(body: body, requestID: request.requestID)
        let (response, bytes) = try await execute(httpRequest)
        guard response.status == .ok else {
            throw Self.upstreamHTTPError(status: Int(response.status.code), body: bytes)
        }
        guard let json = try? JSONValue.parse(bytes.readableBytesView), let choice = json["choices"]?.arrayValue?.first else {
            throw ChorusError.upstreamError(message: "the upstream answered with a body that is not a chat completion", upstreamStatus: nil)
        }
        var output = CompletionOutput()
        let message = choice["message"]
        if let reasoning = message?["reasoning_content"]?.stringValue ?? message?["reasoning"]?.stringValue {
            output.apply(.reasoning(reasoning))
        }
        var splitter = ReasoningSplitter()
        for segment in splitter.feed(message?["content"]?.stringValue ?? "") + splitter.finish() {
            output.apply(segment.event)
        }
        if let refusal = message?["refusal"]?.stringValue { output.apply(.refusal(refusal)) }
        if let calls = message?["tool_calls"], calls.arrayValue != nil { output.apply(.toolCalls(calls)) }
        if let logprobs = choice["logprobs"], !logprobs.isNull { output.apply(.logprobs(logprobs)) }
        output.metadata = ResponseMetadata(systemFingerprint: json["system_fingerprint"]?.stringValue, serviceTier: json["service_tier"]?.stringValue)
        output.finishReason = choice["finish_reason"]?.stringValue ?? "stop"
        if let usage = json["usage"], let prompt = usage["prompt_tokens"]?.intValue {
            output.usage = Usage(
                promptTokens: prompt, completionTokens: usage["completion_tokens"]?.intValue ?? 0,
                promptTokensDetails: usage["prompt_tokens_details"].flatMap { $0.isNull ? nil : $0 },
                completionTokensDetails: usage["completion_tokens_details"].flatMap { $0.isNull ? nil : $0 })
        }
        return output
    }

    /// Reads the upstream's SSE in the caller's task: the response comes through a delegate
    /// (`StreamedResponse`) and the deadlines are an event-loop timer (`StreamWatchdog`) that
    /// fails the request, so a stream costs no task of its own here.
    public func stream(_ request: UpstreamRequest, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws {
        let watchdog = StreamWatchdog(timeouts: timeouts)
        defer { watchdog.stop() }
        var body = request.body
        body["stream"] = .bool(true)
        body["stream_options"] = .object(["include_usage": .bool(true)])
        let (base, headers, bytes) = try await requestParts(body: body, requestID: request.requestID)
        var httpRequest = try streamRequests.request(base: base)
        httpRequest.headers = headers
        httpRequest.body = .byteBuffer(bytes)
        let response = StreamedResponse()
        defer { response.close() }
        try await clients.withClient { client in
            let task = client.execute(
                request: httpRequest, delegate: response, eventLoop: .indifferent,
                deadline: .now() + .milliseconds(Int64(timeouts.total * 1000)), logger: clientLogger)
            watchdog.watch(task)
            do {
                try await withTaskCancellationHandler {
                    try await read(response, requestID: request.requestID, watchdog: watchdog, onEvent: onEvent)
                } onCancel: {
                    task.cancel()
                }
            } catch {
                // Left early (an error status, a broken stream, an error chunk): stop the upstream
                // rather than reading the rest into the void. After `[DONE]` the rest is read, so
                // the connection goes back to the pool.
                task.cancel()
                throw error
            }
        }
    }

    private func read(_ response: StreamedResponse, requestID: String, watchdog: StreamWatchdog, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws {
        let timeouts = self.timeouts
        func next() async throws -> StreamedResponse.Part? {
            do {
                return try await response.next()
            } catch {
                throw Self.transportError(error, timeouts: timeouts)
            }
        }
        guard case .head(let head)? = try await next() else {
            throw ChorusError.upstreamError(message: "the upstream closed the connection without a response", upstreamStatus: nil)
        }
        guard head.status == .ok else {
            var bytes = ByteBuffer()
            while bytes.readableBytes < 64 * 1024, case .body(var part)? = try? await response.next() {
                bytes.writeBuffer(&part)
            }
            throw Self.upstreamHTTPError(status: Int(head.status.code), body: bytes)
        }

        var parser = SSEParser()
        var splitter = ReasoningSplitter()
        var decoder = StreamChunkDecoder()
        var finishReason: String?
        var metadata = ResponseMetadata()
        var sawDone = false
        reading: while case .body(let buffer)? = try await next() {
            let events: [SSEEvent]
            do {
                events = try parser.feed(buffer.readableBytesView)
            } catch {
                throw ChorusError.upstreamError(message: "the upstream sent an SSE line longer than the limit", upstreamStatus: nil)
            }
            for event in events {
                if event.data == "[DONE]" {
                    sawDone = true
                    break reading
                }
                let chunk: StreamChunk
                do {
                    chunk = try decoder.decode(event.data)
                } catch {
                    logger.warning("skipping a malformed upstream chunk", metadata: ["request_id": "\(requestID)", "chunk": "\(event.data.prefix(200))"])
                    continue
                }
                if let error = chunk.error {
                    throw ChorusError.upstreamError(message: error.message ?? "the upstream reported an error mid-stream", upstreamStatus: nil)
                }
                if chunk.system_fingerprint != nil || chunk.service_tier != nil {
                    let reported = ResponseMetadata(systemFingerprint: chunk.system_fingerprint, serviceTier: chunk.service_tier)
                    if reported != metadata {
                        metadata = reported
                        try await onEvent(.metadata(reported))
                    }
                }
                if let choice = chunk.choices?.first {
                    if let reasoning = choice.delta?.reasoning_content ?? choice.delta?.reasoning, !reasoning.isEmpty {
                        watchdog.tokenArrived()
                        try await watchdog.consuming { try await onEvent(.reasoning(reasoning)) }
                    }
                    if let content = choice.delta?.content, !content.isEmpty {
                        watchdog.tokenArrived()
                        try await watchdog.consuming {
                            for segment in splitter.feed(content) { try await onEvent(segment.event) }
                        }
                    }
                    if let refusal = choice.delta?.refusal, !refusal.isEmpty {
                        watchdog.tokenArrived()
                        try await watchdog.consuming { try await onEvent(.refusal(refusal)) }
                    }
                    if let calls = choice.delta?.tool_calls, !(calls.arrayValue?.isEmpty ?? true) {
                        watchdog.tokenArrived()
                        try await watchdog.consuming { try await onEvent(.toolCalls(calls)) }
                    }
                    if let logprobs = choice.logprobs {
                        try await onEvent(.logprobs(logprobs))
                    }
                    if let reason = choice.finish_reason { finishReason = reason }
                }
                if let usage = chunk.usage {
                    try await onEvent(.usage(Usage(
                        promptTokens: usage.prompt_tokens ?? 0, completionTokens: usage.completion_tokens ?? 0,
                        promptTokensDetails: usage.prompt_tokens_details, completionTokensDetails: usage.completion_tokens_details)))
                }
            }
        }
        guard sawDone || finishReason != nil else {
            throw ChorusError.upstreamError(message: "the upstream closed the stream before it finished", upstreamStatus: nil)
        }
        for segment in splitter.finish() { try await onEvent(segment.event) }
        try await onEvent(.finish(finishReason ?? "stop"))
    }

    /// The endpoint's base URL (ending in `/v1`), the headers and the JSON body of a Chat Completions call.
    private func requestParts(body: [String: JSONValue], requestID: String) async throws -> (base: String, headers: HTTPHeaders, body: ByteBuffer) {
        var body = body
        body["model"] = .string(upstreamModel)
        let base = try await endpoint.baseURL(timeout: timeouts.firstToken)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: body["stream"]?.boolValue == true ? "text/event-stream" : "application/json")
        headers.add(name: "X-Request-Id", value: requestID)
        if let apiKey { headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        return (base, headers, ByteBuffer(bytes: try JSONValue.object(body).encoded()))
    }

    private func makeRequest(body: [String: JSONValue], requestID: String) async throws -> HTTPClientRequest {
        let (base, headers, bytes) = try await requestParts(body: body, requestID: requestID)
        var request = HTTPClientRequest(url: base + "/chat/completions")
        request.method = .POST
        request.headers = headers
        request.body = .bytes(bytes)
        return request
    }

    /// The response and its whole body.
    private func execute(_ request: HTTPClientRequest) async throws -> (HTTPClientResponse, ByteBuffer) {
        do {
            return try await clients.withClient { client in
                let response = try await client.execute(request, deadline: .now() + .milliseconds(Int64(timeouts.total * 1000)), logger: clientLogger)
                return (response, try await response.body.collect(upTo: Self.maxBodyBytes))
            }
        } catch {
            throw Self.transportError(error, timeouts: timeouts)
        }
    }

    static func transportError(_ error: any Error, timeouts: ModelTimeouts) -> any Error {
        if error is CancellationError || error is ChorusError { return error }
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded: return ChorusError.upstreamTimeout(phase: .total, seconds: timeouts.total)
            case .connectTimeout: return ChorusError.upstreamTimeout(phase: .connect, seconds: timeouts.connect)
            case .cancelled: return CancellationError()
            default: break
            }
        }
        return ChorusError.upstreamError(message: "the connection to the upstream failed (\(error))", upstreamStatus: nil)
    }

    static func upstreamHTTPError(status: Int, body: ByteBuffer) -> ChorusError {
        let json = try? JSONValue.parse(body.readableBytesView)
        let message = json?["error"]?["message"]?.stringValue
            ?? json?["error"]?.stringValue
            ?? String(String(buffer: body).prefix(300))
        // The model's server judged the request itself invalid (a tool schema, a parameter it does
        // not support): that is the client's to fix, so it gets a 400 with the server's reason.
        if status == 400 || status == 422 {
            return .invalidRequest(
                message: "The upstream model rejected the request: \(message.isEmpty ? "no details" : message)",
                param: json?["error"]?["param"]?.stringValue, code: json?["error"]?["code"]?.stringValue ?? "upstream_rejected")
        }
        return .upstreamError(message: message.isEmpty ? "no details" : message, upstreamStatus: status)
    }
}

extension OutputSegment {
    var event: ProviderEvent {
        switch self {
        case .reasoning(let text): .reasoning(text)
        case .answer(let text): .content(text)
        }
    }
}

/// The parts of a `chat.completion.chunk` (or a mid-stream error) Chorus reads.
struct StreamChunk: Decodable, Equatable {
    struct Choice: Decodable, Equatable {
        struct Delta: Decodable, Equatable {
            var content: String?
            var reasoning_content: String?
            var reasoning: String?
            var refusal: String?
            /// Relayed as they are: only their presence is looked at.
            var tool_calls: JSONValue?
        }
        var delta: Delta?
        var logprobs: JSONValue?
        var finish_reason: String?
    }
    struct UsageCounts: Decodable, Equatable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
        var prompt_tokens_details: JSONValue?
        var completion_tokens_details: JSONValue?
    }
    struct ErrorDetail: Decodable, Equatable {
        var message: String?
    }
    var choices: [Choice]?
    var usage: UsageCounts?
    var error: ErrorDetail?
    var system_fingerprint: String?
    var service_tier: String?
}

/// The streamed request's parsed URL, made again only when the endpoint's base URL changes (a
/// local model restarted on another port). async-http-client parses and takes apart the URL of
/// every `HTTPClient.Request` made from a string: 1.5 % of `chorus serve`'s CPU when each request
/// made its own.
final class StreamRequests: Sendable {
    private let last = Mutex<(base: String, request: HTTPClient.Request)?>(nil)

    /// A POST to `base` + `/chat/completions`, without headers or body.
    func request(base: String) throws -> HTTPClient.Request {
        if let last = last.withLock({ $0 }), last.base == base { return last.request }
        let url = base + "/chat/completions"
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .POST)
        } catch {
            throw ChorusError.upstreamError(message: "the upstream URL is not valid (\(url))", upstreamStatus: nil)
        }
        last.withLock { $0 = (base, request) }
        return request
    }
}

/// Reads a `StreamChunk` from the text of one SSE event (this runs once per streamed token), with
/// `JSONFields`: the text is checked in full, but only the fields below become Swift values.
/// Mirrors what `JSONDecoder` would accept for `StreamChunk`: a missing or `null` field is `nil`,
/// a field of the wrong type (or a chunk that is not an object) throws, and of a key that appears
/// twice the last value counts.
struct StreamChunkDecoder {
    struct TypeMismatch: Error {
        var field: String
    }

    typealias Value = JSONFields.Value

    mutating func decode(_ text: String) throws -> StreamChunk {
        try JSONFields.read(text) { fields, root in
            guard root.kind == .object else { throw TypeMismatch(field: "chunk") }
            var choices, usage, error, fingerprint, tier: Value?
            try fields.members(of: root) { key, value in
                if key == "choices" {
                    choices = value
                } else if key == "usage" {
                    usage = value
                } else if key == "error" {
                    error = value
                } else if key == "system_fingerprint" {
                    fingerprint = value
                } else if key == "service_tier" {
                    tier = value
                }
            }
            var chunk = StreamChunk()
            if let choices = try Self.present(choices, .array, "choices") {
                var list: [StreamChunk.Choice] = []
                try fields.elements(of: choices) { element in
                    list.append(try Self.choice(element, fields))
                }
                chunk.choices = list
            }
            if let usage = try Self.present(usage, .object, "usage") {
                var prompt, completion, promptDetails, completionDetails: Value?
                try fields.members(of: usage) { key, value in
                    if key == "prompt_tokens" {
                        prompt = value
                    } else if key == "completion_tokens" {
                        completion = value
                    } else if key == "prompt_tokens_details" {
                        promptDetails = value
                    } else if key == "completion_tokens_details" {
                        completionDetails = value
                    }
                }
                chunk.usage = StreamChunk.UsageCounts(
                    prompt_tokens: try Self.int(prompt, "prompt_tokens", fields),
                    completion_tokens: try Self.int(completion, "completion_tokens", fields),
                    prompt_tokens_details: try Self.json(promptDetails, fields),
                    completion_tokens_details: try Self.json(completionDetails, fields))
            }
            if let error = try Self.present(error, .object, "error") {
                var message: Value?
                try fields.members(of: error) { key, value in
                    if key == "message" { message = value }
                }
                chunk.error = StreamChunk.ErrorDetail(message: try Self.string(message, "message", fields))
            }
            chunk.system_fingerprint = try Self.string(fingerprint, "system_fingerprint", fields)
            chunk.service_tier = try Self.string(tier, "service_tier", fields)
            return chunk
        }
    }

    private static func choice(_ element: Value, _ fields: JSONFields) throws -> StreamChunk.Choice {
        guard element.kind == .object else { throw TypeMismatch(field: "choices[]") }
        var deltaValue, logprobs, finishReason: Value?
        try fields.members(of: element) { key, value in
            if key == "delta" {
                deltaValue = value
            } else if key == "finish_reason" {
                finishReason = value
            } else if key == "logprobs" {
                logprobs = value
            }
        }
        var delta: StreamChunk.Choice.Delta?
        if let deltaValue = try present(deltaValue, .object, "delta") {
            var content, reasoningContent, reasoning, refusal, toolCalls: Value?
            try fields.members(of: deltaValue) { key, value in
                if key == "content" {
                    content = value
                } else if key == "reasoning_content" {
                    reasoningContent = value
                } else if key == "reasoning" {
                    reasoning = value
                } else if key == "refusal" {
                    refusal = value
                } else if key == "tool_calls" {
                    toolCalls = value
                }
            }
            delta = StreamChunk.Choice.Delta(
                content: try string(content, "content", fields),
                reasoning_content: try string(reasoningContent, "reasoning_content", fields),
                reasoning: try string(reasoning, "reasoning", fields),
                refusal: try string(refusal, "refusal", fields),
                tool_calls: try json(toolCalls, fields))
        }
        return StreamChunk.Choice(
            delta: delta, logprobs: try json(logprobs, fields), finish_reason: try string(finishReason, "finish_reason", fields))
    }

    /// Any value built in full (the rare fields relayed as they are); nil when missing or `null`.
    private static func json(_ value: Value?, _ fields: JSONFields) throws -> JSONValue? {
        guard let value, value.kind != .null else { return nil }
        return try fields.value(value)
    }

    /// The value when it is of `kind`; nil when missing or `null`; otherwise a type mismatch.
    private static func present(_ value: Value?, _ kind: JSONFields.Kind, _ field: String) throws -> Value? {
        guard let value, value.kind != .null else { return nil }
        guard value.kind == kind else { throw TypeMismatch(field: field) }
        return value
    }

    private static func string(_ value: Value?, _ field: String, _ fields: JSONFields) throws -> String? {
        try present(value, .string, field).map { try fields.string($0) }
    }

    /// An integer, or a number with an integral value (as `JSONDecoder` accepts `12.0` for `Int`).
    private static func int(_ value: Value?, _ field: String, _ fields: JSONFields) throws -> Int? {
        guard let number = try present(value, .number, field) else { return nil }
        switch try fields.value(number) {
        case .int(let int): return int
        case .double(let double):
            guard let int = Int(exactly: double) else { throw TypeMismatch(field: field) }
            return int
        default: throw TypeMismatch(field: field)
        }
    }
}
