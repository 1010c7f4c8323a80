import AsyncHTTPClient
import ChorusProviders
import Testing

@Suite struct UpstreamClientsTests {
    /// Holds `count` calls open (each sleeps until cancelled) and returns the calls in flight per
    /// client once all of them have started.
    private func inFlight(holding count: Int, on clients: UpstreamClients) async throws -> [Int] {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    await clients.withClient { _ in try? await Task.sleep(for: .seconds(60)) }
                }
            }
            while clients.callsInFlight.reduce(0, +) < count {
                try await Task.sleep(for: .milliseconds(5))
            }
            let seen = clients.callsInFlight
            group.cancelAll()
            try await group.waitForAll()
            return seen
        }
    }

    @Test func callsFillOneClientBeforeTheNext() async throws {
        let clients = UpstreamClients(configuration: .init(), maxConnectionsPerHost: 600)
        let shardSize = UpstreamClients.shardSize
        #expect(clients.count == 3)
        // One call at a time always takes the first client, so its warm connections are reused.
        for _ in 0..<3 {
            await clients.withClient { _ in #expect(clients.callsInFlight == [1, 0, 0]) }
        }
        #expect(try await inFlight(holding: shardSize + 44, on: clients) == [shardSize, 44, 0])
        // All full: the least busy takes the next call.
        #expect(try await inFlight(holding: 3 * shardSize + 2, on: clients) == [shardSize + 1, shardSize + 1, shardSize])
        #expect(clients.callsInFlight == [0, 0, 0])
        try await clients.shutdown()
    }

    @Test func aSmallLimitIsOneClient() async throws {
        let clients = UpstreamClients(configuration: .init(), maxConnectionsPerHost: 8)
        #expect(clients.count == 1)
        #expect(try await inFlight(holding: 20, on: clients) == [20])
        try await clients.shutdown()
    }
}
