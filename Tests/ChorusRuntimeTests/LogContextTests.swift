import ChorusRuntime
import Logging
import Synchronization
import Testing

/// A line written inside a request's context names the request, whichever logger writes it.
@Suite struct LogContextTests {
    final class Lines: TextOutputStream, Sendable {
        private let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
        var value: [Substring] { text.withLock { $0 }.split(separator: "\n") }
    }

    @Test func theMetadataProviderAddsTheCurrentRequestID() async {
        let lines = Lines()
        // One shared logger, as the engine's: no request id of its own.
        let logger = Logger(label: "chorus.test") { TextLogHandler(label: $0, stream: lines, metadataProvider: LogContext.metadataProvider) }
        logger.info("outside")
        await LogContext.withRequestID("req_a") {
            #expect(LogContext.requestID == "req_a")
            logger.info("inside")
            // A child task (the streamed turn's) inherits it.
            await Task { logger.info("in a child task") }.value
        }
        #expect(LogContext.requestID == nil)
        let written = lines.value
        #expect(written.count == 3)
        #expect(!written[0].contains("request_id"))
        #expect(written[1].contains("request_id=req_a") && written[1].hasSuffix("inside"))
        #expect(written[2].contains("request_id=req_a"))
        #expect(LogContext.metadataProvider.get().isEmpty)
    }
}
