import ChorusCore

/// Where an OpenAI-compatible server listens. A fixed URL, or a local model server that Chorus
/// supervises and that may still be starting.
public protocol UpstreamEndpoint: Sendable {
    /// The base URL ending in `/v1`; waits (up to `timeout` seconds) for a server that is starting.
    func baseURL(timeout: Double) async throws -> String
    /// Whether the server's model can call tools: false when it is known not to (a local model
    /// whose chat template has no tools), nil when unknown.
    var callsTools: Bool? { get }
}

public struct FixedEndpoint: UpstreamEndpoint {
    let url: String

    public init(_ url: String) {
        var url = url
        while url.hasSuffix("/") { url.removeLast() }
        self.url = url
    }

    public func baseURL(timeout: Double) async throws -> String { url }
}
