import ChorusRuntime
import Logging
import Synchronization
import Testing

/// `TextLogHandler` writes the lines `StreamLogHandler` writes, for the same metadata set the same way.
@Suite struct TextLogHandlerTests {
    final class Lines: TextOutputStream, Sendable {
        private let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
        var value: String { text.withLock { $0 } }
    }

    /// A line without its timestamp (everything up to the first space), which may differ by a second.
    private func withoutTimestamp(_ text: String) -> [Substring] {
        text.split(separator: "\n").map { $0.drop(while: { $0 != " " }) }
    }

    @Test func linesMatchStreamLogHandlers() {
        let text = Lines(), stream = Lines()
        var loggers = [
            Logger(label: "chorus.test") { TextLogHandler(label: $0, stream: text, metadataProvider: nil) },
            Logger(label: "chorus.test") { StreamLogHandler(label: $0, stream: stream, metadataProvider: nil) },
        ]
        for index in loggers.indices {
            loggers[index].logLevel = .debug
            loggers[index][metadataKey: "request_id"] = "req_1"
            loggers[index][metadataKey: "hb.request.method"] = "POST"
            loggers[index][metadataKey: "gone"] = "x"
            loggers[index][metadataKey: "gone"] = nil
            loggers[index].info("plain")
            loggers[index].debug("with more", metadata: ["attempt": "2", "request_id": "req_2"])
            loggers[index].trace("below the level")
            loggers[index].error("failed", metadata: ["list": ["a", "b"], "nested": ["k": "v"]])
        }
        let lines = withoutTimestamp(text.value)
        #expect(lines.count == 3)
        #expect(lines == withoutTimestamp(stream.value))
        #expect(lines.first == " info chorus.test: hb.request.method=POST request_id=req_1 [ChorusRuntimeTests] plain")
        #expect(loggers[0][metadataKey: "request_id"] == "req_1")
        #expect(loggers[0][metadataKey: "gone"] == nil)
    }
}
