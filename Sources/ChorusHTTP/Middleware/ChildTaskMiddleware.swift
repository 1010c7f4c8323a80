import Hummingbird

/// Outermost middleware: runs the rest of the chain (the other middleware and the route) in a
/// child task, and only the response body in the connection's own task.
///
/// Swift keeps the memory of a task's async frames (its allocator's slabs) until the task ends,
/// and a connection's task lives as long as the connection: for a stream, minutes. Without this,
/// the chain's deepest moment (authentication, the route, the store's writes) stays allocated for
/// the whole stream. In a child task it is freed as soon as the response is ready, and the
/// connection's task keeps only Hummingbird's frames and the body writer's.
struct ChildTaskMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await withoutActuallyEscaping(next) { next in
            let chain = Chain(next: next)
            return try await withThrowingTaskGroup(of: Response.self) { group in
                group.addTask { try await chain.next(request, context) }
                return try await group.next()!
            }
        }
    }

    /// The rest of the chain, handed to the child task. Sound: it runs exactly once, in the child,
    /// while this task waits for it, and never outlives the call.
    private struct Chain: @unchecked Sendable {
        let next: (Request, Context) async throws -> Response
    }
}
