import ChorusCore
import ChorusRuntime
import HTTPTypes
import Hummingbird

/// While the process drains (after SIGTERM), refuses new work — chat requests and task
/// submissions — with a 503, an OpenAI-shaped error (SkillSpace's on its routes) and `Retry-After`, so that clients and load
/// balancers go to another gateway; and counts the work admitted before, until its response
/// (a stream's whole body) is written, so that the drain knows when it is done.
struct DrainMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext
    let drain: ShutdownDrain

    /// The routes that start work (POST), without their trailing slash.
    static let workPaths: Set<Substring> = [
        "/v1/chat/completions", "/api/chat/completions", "/v1/tasks", "/v1/batches",
        "/api/ai/qwen", "/api/ai/qwen-async", "/api/tasks/submit",
    ]
    /// Seconds a refused client should wait: enough for a load balancer to see `/readyz` fail.
    static let retryAfterSeconds = 5

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, Self.isWork(request.uri.path) else {
            return try await next(request, context)
        }
        guard drain.admit() else {
            // SkillSpace's routes answer in their own error shape, as for every other error.
            var response = APIMiddleware.errorResponse(
                .unavailable("The server is shutting down and accepts no new work; retry (another instance will answer)."),
                skillSpace: SkillSpaceWire.covers(path: request.uri.path))
            response.headers[.retryAfter] = String(Self.retryAfterSeconds)
            return response
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            drain.finished()
            throw error
        }
        let (body, drain) = (response.body, self.drain)
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer { drain.finished() }
            try await body.write(writer)
        }
        return response
    }

    static func isWork(_ path: String) -> Bool {
        var path = Substring(path)
        while path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        return workPaths.contains(path)
    }
}
