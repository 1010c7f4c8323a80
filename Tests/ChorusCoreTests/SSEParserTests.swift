import ChorusCore
import Testing

@Suite struct SSEParserTests {
    /// Feeds `input` split at every possible pair of byte positions and checks the events never change.
    private func parseAllSplits(_ input: String) throws -> [SSEEvent] {
        let bytes = Array(input.utf8)
        var whole = SSEParser()
        let expected = try whole.feed(bytes)
        for i in 0...bytes.count {
            for j in i...bytes.count {
                var parser = SSEParser()
                let events = try parser.feed(bytes[..<i]) + parser.feed(bytes[i..<j]) + parser.feed(bytes[j...])
                #expect(events == expected, "split at \(i), \(j)")
            }
        }
        return expected
    }

    @Test func eventsSplitAtAnyByte() throws {
        let events = try parseAllSplits("data: {\"a\":1}\n\ndata: é✓\r\n\r\n: keep-alive\n\ndata: [DONE]\n\n")
        #expect(events.map(\.data) == ["{\"a\":1}", "é✓", "[DONE]"])
    }

    @Test func multiLineDataIsJoinedWithNewlines() throws {
        let events = try parseAllSplits("data: first\ndata: second\ndata\n\n")
        #expect(events == [SSEEvent(data: "first\nsecond\n")])
    }

    @Test func commentsAndKeepAlivesProduceNoEvents() throws {
        let events = try parseAllSplits(": ping\n\n:\n\n")
        #expect(events.isEmpty)
    }

    @Test func crOnlyLineEndingsAndFieldsWithoutSpace() throws {
        let events = try parseAllSplits("event:delta\rid:7\rdata:x\r\r")
        #expect(events == [SSEEvent(event: "delta", data: "x", id: "7")])
    }

    @Test func idPersistsAcrossEventsAndBOMIsSkipped() throws {
        let events = try parseAllSplits("\u{FEFF}id: 1\ndata: a\n\ndata: b\n\n")
        #expect(events == [SSEEvent(data: "a", id: "1"), SSEEvent(data: "b", id: "1")])
    }

    @Test func unterminatedEventIsNotDispatched() throws {
        var parser = SSEParser()
        #expect(try parser.feed(Array("data: partial".utf8)).isEmpty)
        parser.finish()
        #expect(try parser.feed(Array("\n\n".utf8)).isEmpty)
    }

    @Test func overlongLineIsAnError() {
        var parser = SSEParser(maxLineLength: 16)
        #expect(throws: SSEParser.LineTooLong.self) {
            _ = try parser.feed(Array(String(repeating: "x", count: 17).utf8))
        }
    }
}
