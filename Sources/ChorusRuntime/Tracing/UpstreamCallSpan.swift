import Tracing

/// The span of the upstream call in progress, for what happens deeper down during it (its first
/// token is an event on it). A task-local: `ServiceContext` holds a span's context, not the span.
enum UpstreamCallSpan {
    @TaskLocal static var current: (any Span)?
}
