import ChorusCore
import Hummingbird

/// Innermost middleware: the router answers 404 when no route matches the path and the method;
/// when the path is known with other methods, the answer is 405 with `Allow` instead. A response,
/// not an error, so that the audit log and the metrics record the status the client gets.
struct MethodNotAllowedMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext

    let routes: RouteMethods

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError where error.status == .notFound {
            // Handlers report their own 404s as `ChorusError`; this one is the router's.
            let allowed = routes.allowed(path: request.uri.path)
            guard !allowed.isEmpty else { throw error }
            var response = APIMiddleware.errorResponse(.methodNotAllowed)
            response.headers[.allow] = allowed.joined(separator: ", ")
            return response
        }
    }
}
