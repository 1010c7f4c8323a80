import ChorusRuntime
import Foundation
import Hummingbird

/// `GET /v1/admin/deployments` (`admin:ops`): every model's deployments as this process sees
/// them — breaker state, calls in flight, recent error rate and latency.
struct DeploymentsController: Sendable {
    let models: ModelRegistry

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/v1/admin/deployments", use: list)
    }

    @Sendable func list(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<DeploymentStatus>> {
        let now = Date.now.timeIntervalSince1970
        return ListObject(models.deployments.map { $0.status(now: now) }).uncached()
    }
}
