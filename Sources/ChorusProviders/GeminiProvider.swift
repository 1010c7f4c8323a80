import AsyncHTTPClient
public import ChorusCore
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// Google's Gemini API, spoken natively: `{base}/models/{model}:generateContent`, and
/// `:streamGenerateContent?alt=sse` for streams, the key in `x-goog-api-key`. The OpenAI request
/// is rewritten by `GeminiRequestBody` and the answer read by `GeminiResponseDecoder`; the
/// transport (pooled clients, `StreamedResponse`, `StreamWatchdog`, the timeouts and the error
/// mapping) is the OpenAI provider's.
public struct GeminiProvider: ChatProvider {
    public static let defaultBaseURL = "https://generativelanguage.googleapis.com/v1beta"

    public let endpoint: any UpstreamEndpoint
    public let upstreamModel: String
    public let apiKey: String?
    public let timeouts: ModelTimeouts
    let clients: UpstreamClients
    let logger: Logger
    private let streamRequests: StreamRequests

    public init(endpoint: any UpstreamEndpoint, upstreamModel: String, apiKey: String?, timeouts: ModelTimeouts, clients: UpstreamClients, logger: Logger) {
        self.endpoint = endpoint
        // `models/gemini-2.5-flash` (as Google's model list names it) and `gemini-2.5-flash` alike.
        let model = upstreamModel.hasPrefix("models/") ? String(upstreamModel.dropFirst("models/".count)) : upstreamModel
        self.upstreamModel = model
        self.apiKey = apiKey
        self.timeouts = timeouts
        self.clients = clients
        self.logger = logger
        self.streamRequests = StreamRequests(path: "/models/\(Self.escaped(model)):streamGenerateContent?alt=sse")
    }

    private var clientLogger: Logger? { logger.logLevel <= .debug ? logger : nil }

    /// What Gemini cannot be given is refused before anything is stored.
    public func check(_ request: UpstreamRequest) throws {
        _ = try GeminiRequestBody.make(from: request.body)
    }

    public func complete(_ request: UpstreamRequest) async throws -> CompletionOutput {
        let body = try GeminiRequestBody.make(from: request.body)
        let base = try await endpoint.baseURL(timeout: timeouts.firstToken)
        var httpRequest = HTTPClientRequest(url: base + "/models/\(Self.escaped(upstreamModel)):generateContent")
        httpRequest.method = .POST
        httpRequest.headers = headers(requestID: request.requestID, streaming: false)
        httpRequest.body = .bytes(ByteBuffer(bytes: try body.encoded()))
        let (response, bytes): (HTTPClientResponse, ByteBuffer)
        do {
            (response, bytes) = try await clients.withClient(connectTimeout: timeouts.connect) { client in
                let response = try await client.execute(httpRequest, deadline: .now() + .milliseconds(Int64(timeouts.total * 1000)), logger: clientLogger)
                return (response, try await response.body.collect(upTo: OpenAICompatibleProvider.maxBodyBytes))
            }
        } catch {
            throw OpenAICompatibleProvider.transportError(error, timeouts: timeouts)
        }
        guard response.status == .ok else {
            throw Self.upstreamHTTPError(status: Int(response.status.code), body: bytes)
        }
        guard let json = try? JSONValue.parse(bytes.readableBytesView), json.objectValue != nil else {
            throw ChorusError.upstreamError(message: "the upstream answered with a body that is not a Gemini response", upstreamStatus: nil)
        }
        var decoder = GeminiResponseDecoder()
        var output = CompletionOutput()
        for event in try decoder.events(json) { output.apply(event) }
        output.finishReason = decoder.finishReason ?? "stop"
        output.usage = decoder.usage
        return output
    }

    /// Reads the SSE as the OpenAI provider does; Gemini's stream has no `[DONE]`: it ends with
    /// the body, after an event that carries the finish reason.
    public func stream(_ request: UpstreamRequest, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws {
        let watchdog = StreamWatchdog(timeouts: timeouts)
        defer { watchdog.stop() }
        let body = try GeminiRequestBody.make(from: request.body)
        let base = try await endpoint.baseURL(timeout: timeouts.firstToken)
        var httpRequest = try streamRequests.request(base: base)
        httpRequest.headers = headers(requestID: request.requestID, streaming: true)
        httpRequest.body = .byteBuffer(ByteBuffer(bytes: try body.encoded()))
        try await clients.stream(httpRequest, timeouts: timeouts, watchdog: watchdog, logger: clientLogger) { response in
            try await read(response, requestID: request.requestID, watchdog: watchdog, onEvent: onEvent)
        }
    }

    private func read(_ response: StreamedResponse, requestID: String, watchdog: StreamWatchdog, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws {
        let timeouts = self.timeouts
        try await response.requireOK(timeouts: timeouts) { head, bytes in Self.upstreamHTTPError(status: Int(head.status.code), body: bytes) }
        var parser = SSEParser()
        var decoder = GeminiResponseDecoder()
        while case .body(let buffer)? = try await response.nextPart(timeouts: timeouts) {
            let events: [SSEEvent]
            do {
                events = try parser.feed(buffer.readableBytesView)
            } catch {
                throw ChorusError.upstreamError(message: "the upstream sent an SSE line longer than the limit", upstreamStatus: nil)
            }
            for event in events {
                let json: JSONValue
                do {
                    json = try JSONValue.parse(Array(event.data.utf8))
                } catch {
                    logger.warning("skipping a malformed upstream chunk", metadata: ["request_id": "\(requestID)", "chunk": "\(event.data.prefix(200))"])
                    continue
                }
                for providerEvent in try decoder.events(json) {
                    watchdog.tokenArrived()
                    try await watchdog.consuming { try await onEvent(providerEvent) }
                }
            }
        }
        guard let finishReason = decoder.finishReason else {
            throw ChorusError.upstreamError(message: "the upstream closed the stream before it finished", upstreamStatus: nil)
        }
        if let usage = decoder.usage { try await onEvent(.usage(usage)) }
        try await onEvent(.finish(finishReason))
    }

    private func headers(requestID: String, streaming: Bool) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Accept", value: streaming ? "text/event-stream" : "application/json")
        headers.add(name: "X-Request-Id", value: requestID)
        if let apiKey { headers.add(name: "x-goog-api-key", value: apiKey) }
        headers.addTraceContext()
        return headers
    }

    /// The model name as one path segment.
    static func escaped(_ model: String) -> String {
        model.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/:?#"))) ?? model
    }

    /// Gemini's `{"error":{"code","message","status"}}`. A 400 is the request's fault and the
    /// client's 400, except a rejected API key (Gemini answers that with 400 too), which is the
    /// operator's; 429 and 5xx stay upstream errors, which are retried.
    static func upstreamHTTPError(status: Int, body: ByteBuffer) -> ChorusError {
        let json = try? JSONValue.parse(body.readableBytesView)
        let error = json?["error"]
        var message = error?["message"]?.stringValue ?? String(String(buffer: body).prefix(300))
        if message.isEmpty { message = "no details" }
        let keyRejected = error?["details"]?.arrayValue?.contains { $0["reason"]?.stringValue == "API_KEY_INVALID" } ?? false
        if status == 400 && !keyRejected {
            return .invalidRequest(
                message: "The upstream model rejected the request: \(message)",
                param: nil, code: error?["status"]?.stringValue.map { $0.lowercased() } ?? "upstream_rejected")
        }
        return .upstreamError(message: message, upstreamStatus: status)
    }
}
