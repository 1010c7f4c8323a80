import AsyncHTTPClient
public import ChorusCore
import Foundation
public import Logging
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
            throw Self.upstreamHTTPError(status: Int(response.status.code), body: bytes, retryAfter: response.headers.first(name: "retry-after"))
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
        try await clients.stream(httpRequest, timeouts: timeouts, watchdog: watchdog, logger: clientLogger) { response in
            try await read(response, requestID: request.requestID, watchdog: watchdog, onEvent: onEvent)
        }
    }

    private func read(_ response: StreamedResponse, requestID: String, watchdog: StreamWatchdog, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws {
        let timeouts = self.timeouts
        try await response.requireOK(timeouts: timeouts) { head, bytes in Self.upstreamHTTPError(status: Int(head.status.code), body: bytes, retryAfter: head.headers.first(name: "retry-after")) }

        var parser = SSEParser()
        var splitter = ReasoningSplitter()
        var decoder = StreamChunkDecoder()
        var finishReason: String?
        var metadata = ResponseMetadata()
        var sawDone = false
        reading: while case .body(let buffer)? = try await response.nextPart(timeouts: timeouts) {
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
        headers.addTraceContext()
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
            return try await clients.withClient(connectTimeout: timeouts.connect) { client in
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

    static func upstreamHTTPError(status: Int, body: ByteBuffer, retryAfter: String? = nil) -> ChorusError {
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
        // Retry-After in seconds (an HTTP date is rare from model servers and is ignored).
        let retryAfterSeconds = retryAfter.flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }.map { max(0, $0) }
        return .upstreamError(message: message.isEmpty ? "no details" : message, upstreamStatus: status, retryAfterSeconds: retryAfterSeconds)
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
