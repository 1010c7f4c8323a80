public import AsyncHTTPClient
import NIOCore
import Synchronization

/// The HTTP clients every upstream call goes through.
///
/// async-http-client keeps one connection pool per host, and its state machine copies the
/// pool's whole connection list on each connection event: a connect, a request, a release. With
/// N streams to one HTTP/1.1 upstream (a vLLM or llama.cpp server), every event costs O(N) copies
/// and retains: with thousands of streams, a large part of Chorus's CPU, and new streams waited
/// in the accept queue behind it. So Chorus spreads its calls over several clients with small
/// pools. A call takes the first client with fewer than `shardSize` calls in flight. Light
/// traffic then stays on the first client and reuses its warm connections (a cloud API's TLS
/// handshake is not repeated), and heavy traffic fills one client after another.
public final class UpstreamClients: Sendable {
    /// Calls in flight that one client takes before the next client is used.
    public static let shardSize = 256

    private let clients: [HTTPClient]
    private let inFlight: Mutex<[Int]>
    /// The configuration the clients were made with (a connect timeout's own clients copy it).
    private let configuration: HTTPClient.Configuration
    private let maxConnectionsPerHost: Int
    /// Clients for the models whose connect timeout differs from this one's, made on first use
    /// (async-http-client sets the connect timeout per client, not per request).
    private let byConnectTimeout = Mutex<[Int64: UpstreamClients]>([:])

    /// Clients for at least `maxConnectionsPerHost` concurrent connections to one host, each
    /// with `configuration`, whose per-host limit is set here.
    public init(configuration: HTTPClient.Configuration, maxConnectionsPerHost: Int) {
        let perClient = min(Self.shardSize, max(1, maxConnectionsPerHost))
        let count = (max(1, maxConnectionsPerHost) + perClient - 1) / perClient
        self.configuration = configuration
        self.maxConnectionsPerHost = maxConnectionsPerHost
        var configuration = configuration
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = perClient
        clients = (0..<count).map { _ in HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration) }
        inFlight = Mutex(Array(repeating: 0, count: count))
    }

    /// How many clients there are.
    public var count: Int { clients.count }

    /// Runs `body` with the first client that has room; the call counts as in flight until
    /// `body` returns, so a stream holds its client until it is read to the end.
    ///
    /// - Parameter connectTimeout: seconds; clients with that TCP connect timeout (nil: these).
    public func withClient<T>(connectTimeout: Double? = nil, _ body: (HTTPClient) async throws -> T) async rethrows -> T {
        if let connectTimeout, let other = clients(connectTimeout: connectTimeout) {
            return try await other.withClient(body)
        }
        let index = lease()
        defer { inFlight.withLock { $0[index] -= 1 } }
        return try await body(clients[index])
    }

    /// Calls in flight on each client (for tests and diagnostics).
    public var callsInFlight: [Int] { inFlight.withLock { $0 } }

    /// The clients for `seconds` of connect timeout, when that is not these clients' own.
    private func clients(connectTimeout seconds: Double) -> UpstreamClients? {
        let milliseconds = Int64((seconds * 1000).rounded())
        guard configuration.timeout.connect != .milliseconds(milliseconds) else { return nil }
        return byConnectTimeout.withLock { variants in
            if let existing = variants[milliseconds] { return existing }
            var configuration = self.configuration
            configuration.timeout.connect = .milliseconds(milliseconds)
            let made = UpstreamClients(configuration: configuration, maxConnectionsPerHost: maxConnectionsPerHost)
            variants[milliseconds] = made
            return made
        }
    }

    public func shutdown() async throws {
        for variant in byConnectTimeout.withLock({ Array($0.values) }) {
            try await variant.shutdown()
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask { try await client.shutdown() }
            }
            try await group.waitForAll()
        }
    }

    /// The first client under `shardSize` calls; when all are full, the least busy.
    private func lease() -> Int {
        inFlight.withLock { counts in
            let shardSize = Self.shardSize
            let index = counts.firstIndex { $0 < shardSize }
                ?? counts.indices.min { counts[$0] < counts[$1] }!
            counts[index] += 1
            return index
        }
    }
}
