import AsyncHTTPClient
import ChorusCore
import Logging
import NIOCore

extension UpstreamClients {
    /// Sends a streaming request and hands its response to `read` in the caller's task: the body
    /// comes through a delegate (`StreamedResponse`) and the deadlines are `watchdog`'s timer, so a
    /// stream costs no task of its own. Cancelling the caller cancels the request.
    func stream(
        _ request: HTTPClient.Request, timeouts: ModelTimeouts, watchdog: StreamWatchdog, logger: Logger?,
        read: (StreamedResponse) async throws -> Void
    ) async throws {
        let response = StreamedResponse()
        defer { response.close() }
        try await withClient(connectTimeout: timeouts.connect) { client in
            let task = client.execute(
                request: request, delegate: response, eventLoop: .indifferent,
                deadline: .now() + .milliseconds(Int64(timeouts.total * 1000)), logger: logger)
            watchdog.watch(task)
            do {
                try await withTaskCancellationHandler {
                    try await read(response)
                } onCancel: {
                    task.cancel()
                }
            } catch {
                // Left early (an error status, a broken stream, an error chunk): stop the upstream
                // rather than reading the rest into the void. After the end the rest is read, so
                // the connection goes back to the pool.
                task.cancel()
                throw error
            }
        }
    }
}
