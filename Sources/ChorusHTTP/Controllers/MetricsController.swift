import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird
import NIOCore

/// `GET /metrics`: Prometheus's text format. Queue depth, pending and lag per model, tasks by
/// state, dead letters and connections in use are read when scraped; the rest is recorded as it
/// happens.
struct MetricsController<Store: ConversationStore>: Sendable {
    let metrics: ChorusMetrics
    let tasks: TaskService<Store>
    let queues: [String]

    func addRoutes<Context: RequestContext>(to router: Router<Context>) {
        router.get("/metrics") { _, _ in try await self.scrape() }
    }

    func scrape() async throws -> Response {
        metrics.sampleParts()
        for stats in try await tasks.queue.stats(models: queues) {
            metrics.set("chorus_queue_depth", [("model", stats.model)], to: stats.depth)
            metrics.set("chorus_queue_pending", [("model", stats.model)], to: stats.pending)
            metrics.set("chorus_queue_lag", [("model", stats.model)], to: stats.lag)
        }
        let counts = try await tasks.tasks.counts()
        for state in TaskState.allCases {
            metrics.set("chorus_tasks", [("state", state.rawValue)], to: counts.byState[state.rawValue] ?? 0)
        }
        metrics.set("chorus_dead_letters", [], to: counts.deadLetters)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: metrics.render())))
    }
}
