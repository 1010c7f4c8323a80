import AsyncHTTPClient
import ChorusCore
import ChorusProviders
@testable import ChorusRuntime
import Logging
import Testing

/// Picking a deployment, without any call: the route over deployments whose URLs go nowhere.
@Suite struct ModelRouteTests {
    private func registry(_ yaml: String) throws -> (ModelRegistry, UpstreamClients) {
        let configuration = try ConfigurationLoader.parse(yaml: yaml)
        let clients = UpstreamClients(configuration: .init(), maxConnectionsPerHost: 1)
        return (ModelRegistry(models: configuration.models, clients: clients, environment: [:], logger: Logger(label: "test")), clients)
    }

    private let pair = """
        models:
          m:
            provider: openai
            upstream_model: x
            deployments:
              - {base_url: http://a.invalid/v1}
              - {base_url: "http://user:secret@b.invalid/v1", weight: 3, max_concurrency: 1}
            queue: {max_waiting: 0, max_wait_seconds: 0}
        """

    @Test func aConversationAlwaysGetsTheSameDeploymentAndOthersSpreadByWeight() async throws {
        let (models, clients) = try registry(pair)
        let route = try #require(models["m"]).route
        for conversation in ["conv_a", "conv_b", "conv_c"] {
            var seen = Set<Int>()
            for _ in 0..<5 {
                let lease = try await route.acquire(affinity: conversation)
                seen.insert(lease.deployment.index)
                lease.release(.success)
            }
            #expect(seen.count == 1, "one conversation, one deployment")
        }
        var counts = [0, 0]
        for _ in 0..<400 {
            let lease = try await route.acquire(affinity: nil)
            counts[lease.deployment.index] += 1
            lease.release(.success)
        }
        // Weights 1 and 3: about 100 and 300.
        #expect(counts[1] > counts[0] * 2, "\(counts)")
        try await clients.shutdown()
    }

    @Test func aFullDeploymentIsSkippedAndCredentialsAreNotShown() async throws {
        let (models, clients) = try registry(pair)
        let route = try #require(models["m"]).route
        // Deployment 1 takes one call at a time; deployment 0 has no limit.
        var held: [DeploymentLease] = []
        while held.count < 5 { held.append(try await route.acquire(affinity: nil)) }
        #expect(held.filter { $0.deployment.index == 1 }.count == 1)
        for lease in held { lease.release(.success) }
        #expect(route.deployments[1].status(now: 0).baseURL == "http://b.invalid/v1", "credentials in a URL are not shown")
        try await clients.shutdown()
    }

    @Test func aFailingDeploymentIsAvoidedAndEveryDeploymentFailingIsUnavailable() async throws {
        let (models, clients) = try registry("""
            models:
              m:
                provider: openai
                upstream_model: x
                deployments: [{base_url: http://a.invalid/v1}, {base_url: http://b.invalid/v1}]
                breaker: {failures: 1, cooldown_seconds: 60}
            """)
        let route = try #require(models["m"]).route
        let first = try await route.acquire(affinity: "conv")
        first.release(.failure)
        // Its breaker is open: the same conversation goes to the other deployment.
        let second = try await route.acquire(affinity: "conv")
        #expect(second.deployment.index != first.deployment.index)
        second.release(.failure)
        await #expect(throws: ChorusError.self) { _ = try await route.acquire(affinity: "conv") }
        try await clients.shutdown()
    }
}
