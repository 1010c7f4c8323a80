import AsyncHTTPClient
import ChorusCore
public import ChorusProviders
public import ChorusRuntime
import NIOCore

extension UpstreamClients {
    /// Long-lived clients for every upstream, with connection reuse. Streams hold a connection
    /// each, so the per-host limit is high; each model's connect timeout applies to its calls.
    public convenience init(configuration: ChorusConfiguration) {
        var client = HTTPClient.Configuration()
        client.connectionPool = .init(idleTimeout: .milliseconds(Int64(configuration.upstream.idleConnectionSeconds * 1000)))
        // The default; a model with another connect timeout gets clients of its own (`withClient`).
        client.timeout = .init(connect: .milliseconds(Int64(ModelTimeouts().connect * 1000)))
        client.decompression = .disabled
        self.init(configuration: client, maxConnectionsPerHost: configuration.upstream.maxConnectionsPerHost)
    }
}
