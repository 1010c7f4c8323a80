public import ChorusProviders
public import ServiceLifecycle

/// Active health checks: polls each deployment's `health_url`; while it fails, the deployment is
/// out of rotation (the passive breaker still judges real calls).
public struct HealthProber: Service {
    let deployments: [Deployment]
    let clients: UpstreamClients

    public init(deployments: [Deployment], clients: UpstreamClients) {
        self.deployments = deployments.filter { $0.settings.healthURL != nil }
        self.clients = clients
    }

    public func run() async throws {
        // A service that returns would end the application: with nothing to poll, wait for the end.
        guard !deployments.isEmpty else { return try await gracefulShutdown() }
        await withDiscardingTaskGroup { group in
            for deployment in deployments {
                guard let url = deployment.settings.healthURL else { continue }
                let (clients, interval) = (self.clients, deployment.settings.healthIntervalSeconds)
                group.addTask {
                    while !Task.isShuttingDownGracefully, !Task.isCancelled {
                        deployment.setProbeHealthy(await clients.probe(url, timeout: min(5, max(1, interval))))
                        try? await Task.sleep(for: .milliseconds(Int64(interval * 1000)))
                    }
                }
            }
        }
    }
}
