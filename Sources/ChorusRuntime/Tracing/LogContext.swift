public import Logging
public import Tracing

/// The request or task that the current Swift task works for, in the task-local `ServiceContext`
/// (beside the current span), so that every log line written on its behalf names it, whichever
/// `Logger` writes it (the engine's and the stores' loggers are shared, not per request).
public enum LogContext {
    enum RequestIDKey: ServiceContextKey {
        typealias Value = String
        static var nameOverride: String? { "request_id" }
    }

    enum TaskIDKey: ServiceContextKey {
        typealias Value = String
        static var nameOverride: String? { "task_id" }
    }

    /// Runs `operation` with `request_id` in the current context.
    public static func withRequestID<T>(
        _ id: String, isolation: isolated (any Actor)? = #isolation, _ operation: () async throws -> T
    ) async rethrows -> T {
        var context = ServiceContext.current ?? .topLevel
        context[RequestIDKey.self] = id
        return try await ServiceContext.withValue(context, isolation: isolation, operation: operation)
    }

    /// `context` with `task_id` set.
    public static func with(taskID: String, in context: ServiceContext) -> ServiceContext {
        var context = context
        context[TaskIDKey.self] = taskID
        return context
    }

    public static var requestID: String? { ServiceContext.current?[RequestIDKey.self] }
    public static var taskID: String? { ServiceContext.current?[TaskIDKey.self] }

    /// `request_id` and `task_id` of the current context, for `LoggingSystem.bootstrap`.
    public static let metadataProvider = Logger.MetadataProvider {
        guard let context = ServiceContext.current else { return [:] }
        var metadata: Logger.Metadata = [:]
        if let id = context[RequestIDKey.self] { metadata["request_id"] = .string(id) }
        if let id = context[TaskIDKey.self] { metadata["task_id"] = .string(id) }
        return metadata
    }
}
