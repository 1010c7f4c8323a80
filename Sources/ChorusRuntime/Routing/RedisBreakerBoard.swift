public import ChorusRedis
import Foundation
public import Logging
public import ServiceLifecycle

/// The distributed shape's breaker board: a process that opens a deployment's breaker writes
/// `PREFIX:breaker:MODEL/INDEX` (expiring with the cool-down); every process reads all such keys
/// every `pollSeconds` and opens its own breaker until the same time. So a dead deployment is
/// skipped everywhere within a poll of the first failure that opened it, without each process
/// paying its own `failures` calls first. A probe that succeeds deletes the key.
public struct RedisBreakerBoard: BreakerBoard, Service {
    let redis: RedisClient
    let prefix: String
    let deployments: [Deployment]
    let logger: Logger
    var pollSeconds = 0.25

    public init(redis: RedisClient, prefix: String, deployments: [Deployment], logger: Logger) {
        self.redis = redis
        self.prefix = prefix
        self.deployments = deployments
        self.logger = logger
    }

    private func key(_ deployment: Deployment) -> String { "\(prefix):breaker:\(deployment.key)" }

    public func publish(_ change: Deployment.BreakerChange, for deployment: Deployment) {
        let (redis, key, logger) = (self.redis, self.key(deployment), self.logger)
        Task {
            do {
                switch change {
                case .opened(let until):
                    let milliseconds = max(1, Int64(((until - Date.now.timeIntervalSince1970) * 1000).rounded(.up)))
                    try await redis.set(key, to: String(until), expiresIn: .milliseconds(milliseconds))
                case .closed:
                    try await redis.del(key)
                }
            } catch {
                logger.warning("could not share a breaker change", metadata: ["deployment": "\(deployment.key)", "error": "\(error)"])
            }
        }
    }

    public func run() async throws {
        // A service that returns would end the application: with nothing to poll, wait for the end.
        guard !deployments.isEmpty else { return try await gracefulShutdown() }
        let keys = deployments.map(key)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let reply = try await redis.send(["MGET"] + keys, timeout: .seconds(2))
                for (deployment, value) in zip(deployments, reply.array ?? []) {
                    if let until = value.double { deployment.openRemotely(until: until) }
                }
            } catch {
                logger.debug("could not read shared breakers", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .milliseconds(Int64(pollSeconds * 1000)))
        }
    }
}
