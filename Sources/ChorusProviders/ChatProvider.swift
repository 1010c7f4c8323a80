public import ChorusCore

/// One upstream call, in OpenAI terms. `body` is the request as it goes upstream, minus `model`
/// and `stream`, which the provider sets.
public struct UpstreamRequest: Sendable {
    public var body: [String: JSONValue]
    public var requestID: String

    public init(body: [String: JSONValue], requestID: String) {
        self.body = body
        self.requestID = requestID
    }
}

/// A language model behind some API. One implementation per provider kind.
///
/// Both calls run in the caller's task: cancelling the task cancels the upstream request.
public protocol ChatProvider: Sendable {
    /// A whole completion (the upstream is called without streaming).
    func complete(_ request: UpstreamRequest) async throws -> CompletionOutput
    /// Throws `ChorusError.invalidRequest` for a request the model is known not to serve (before
    /// anything is stored), rather than letting it be answered as if part of it were not there.
    func check(_ request: UpstreamRequest) throws
    /// A streamed completion: `onEvent` sees thinking and answer separated. Throws `ChorusError`
    /// on upstream failure or timeout; events delivered before the error stand.
    func stream(_ request: UpstreamRequest, onEvent: @Sendable (ProviderEvent) async throws -> Void) async throws
}

extension UpstreamEndpoint {
    public var callsTools: Bool? { nil }
}

extension ChatProvider {
    public func check(_ request: UpstreamRequest) throws {}
}
