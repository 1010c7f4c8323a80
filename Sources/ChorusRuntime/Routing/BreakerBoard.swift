/// Shares breaker changes between processes, so that every gateway and worker skips a dead
/// deployment soon after the first one notices (`RedisBreakerBoard` in the distributed shape).
public protocol BreakerBoard: Sendable {
    func publish(_ change: Deployment.BreakerChange, for deployment: Deployment)
}
