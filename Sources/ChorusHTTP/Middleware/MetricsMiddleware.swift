import ChorusRuntime
import Hummingbird

/// Counts every request by route template, method and status, and times it (to the response's
/// head: a stream's body is not included). Outermost, so it sees the status errors became.
struct MetricsMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext
    let metrics: ChorusMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.httpRequest(
            route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: Int(response.status.code),
            duration: .now - start)
        return response
    }
}
