public import Hummingbird
import Logging
import NIOCore

/// Builds the fake OpenAI-compatible upstream used by tests and benchmarks.
///
/// Endpoints:
/// - `POST /v1/chat/completions`: deterministic answers (answer token `i` is `"t\(i) "`,
///   reasoning token `i` is `"r\(i) "`), as a `chat.completion` or, with `"stream": true`, as
///   `chat.completion.chunk` server-sent events ending in `data: [DONE]`.
/// - `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`: the
///   same answers and faults in Gemini's shape (`GeminiController`), the key checked when
///   `configuration.apiKey` is set.
/// - `GET /v1/models`, `GET /v1/models/{id}`, `GET /health`.
/// - `GET /_fake/stats`, `GET /_fake/requests?last=N` (the last N raw request bodies, at most
///   200 kept), `POST /_fake/reset`.
///
/// Per-request behaviour: `[[fake key=value ...]]` in the last user message, or the header
/// `X-Fake: key=value ...` (the header wins). Keys: `tokens`, `reasoning`, `think_tags`,
/// `rate`, `status`, `retry_after`, `times`, `stall_first`, `stall_after` + `stall`, `malformed_after`,
/// `disconnect_after`, `error_after`, `echo`, `usage`, `comments`, `watch_close`,
/// `tool_calls`, `refusal`, `block`, `block_prompt`; see `FakeOptions`. An unknown key or a bad value is answered with
/// HTTP 400.
///
/// The request body also steers the answer: `tools`/`tool_choice`/`parallel_tool_calls`
/// (tool calls), a trailing `role: "tool"` message (a summary of the results),
/// `response_format` (JSON), `logprobs`/`top_logprobs`, `stop`, `max_completion_tokens`/
/// `max_tokens` and `service_tier`; see `Answer`, `ToolCallPlan`, `LogprobsJSON` and
/// `CompletionPlan`.
///
/// Run it with `run()` inside a test's task group, or `runService()` in an executable.
///
/// - Parameters:
///   - configuration: Address and defaults.
///   - stats: Counters and request log, shared with the caller so in-process tests can read
///     them directly; the same actor backs `/_fake/stats`.
///   - onServerRunning: Called once the server is bound, with the port it listens on (the
///     real one when `configuration.port` is 0).
public func buildFakeUpstream(
    configuration: FakeUpstreamConfiguration,
    stats: FakeUpstreamStats = FakeUpstreamStats(),
    onServerRunning: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
) -> some ApplicationProtocol {
    let router = Router(context: BasicRequestContext.self)
    router.addRoutes(
        ChatCompletionsController(configuration: configuration, stats: stats).endpoints,
        atPath: "/v1"
    )
    router.addRoutes(ModelsController(configuration: configuration).endpoints, atPath: "/v1")
    router.addRoutes(GeminiController(configuration: configuration, stats: stats).endpoints, atPath: "/v1beta")
    router.addRoutes(FakeControlController(stats: stats).endpoints, atPath: "/_fake")
    router.get("health") { _, _ in HTTPResponse.Status.ok }

    var logger = Logger(label: "fake-upstream", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = configuration.logLevel
    return Application(
        router: router,
        // Chorus opens one upstream connection per concurrent stream: a burst of thousands must not
        // overflow the accept queue (Hummingbird's default is 256); uvicorn, which vLLM runs on, queues 2048.
        configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), backlog: 4096),
        onServerRunning: { channel in
            await onServerRunning(channel.localAddress?.port ?? configuration.port)
        },
        logger: logger
    )
}
