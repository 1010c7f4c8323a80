import AsyncHTTPClient
import ChorusCore
public import ChorusProviders
public import ChorusRuntime
import NIOCore

extension UpstreamClients {
    /// Long-lived clients for every upstream, with connection reuse. Streams hold a connection
    /// each, so the per-host limit is high; the connect timeout is the largest any model allows
    /// (each model's own is enforced per request).
    public convenience init(configuration: ChorusConfiguration) {
        var client = HTTPClient.Configuration()
        client.connectionPool = .init(idleTimeout: .milliseconds(Int64(configuration.upstream.idleConnectionSeconds * 1000)))
        let connect = configuration.models.map(\.timeouts.connect).max() ?? 10
        client.timeout = .init(connect: .milliseconds(Int64(connect * 1000)))
        client.decompression = .disabled
        self.init(configuration: client, maxConnectionsPerHost: configuration.upstream.maxConnectionsPerHost)
    }
}
