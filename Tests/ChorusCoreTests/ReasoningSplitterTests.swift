import ChorusCore
import Testing

@Suite struct ReasoningSplitterTests {
    /// Joins the segments of one kind.
    private func collect(_ segments: [OutputSegment]) -> (reasoning: String, answer: String) {
        var reasoning = "", answer = ""
        for segment in segments {
            switch segment {
            case .reasoning(let text): reasoning += text
            case .answer(let text): answer += text
            }
        }
        return (reasoning, answer)
    }

    /// Splits `text` into chunks at every pair of positions and checks the result is the same.
    private func splitEverywhere(_ text: String) -> (reasoning: String, answer: String) {
        var splitter = ReasoningSplitter()
        let expected = collect(splitter.feed(text) + splitter.finish())
        let characters = Array(text)
        for i in 0...characters.count {
            for j in i...characters.count {
                var splitter = ReasoningSplitter()
                let parts = [String(characters[..<i]), String(characters[i..<j]), String(characters[j...])]
                let result = collect(parts.flatMap { splitter.feed($0) } + splitter.finish())
                #expect(result == expected, "split at \(i), \(j)")
            }
        }
        return expected
    }

    @Test func thinkTags() {
        let result = splitEverywhere("<think>\nLet me see.</think>\n\nParis.")
        #expect(result.reasoning == "Let me see.")
        #expect(result.answer == "Paris.")
    }

    @Test func thinkingAndAnswerTags() {
        let result = splitEverywhere("<thinking>a < b</thinking><answer>yes</answer>")
        #expect(result.reasoning == "a < b")
        #expect(result.answer == "yes")
    }

    @Test func plainTextAndLookalikeTagsPassThrough() {
        let result = splitEverywhere("x <thin y <b>bold</b> <")
        #expect(result.reasoning == "")
        #expect(result.answer == "x <thin y <b>bold</b> <")
    }

    @Test func unfinishedThinkingStaysReasoning() {
        var splitter = ReasoningSplitter()
        let result = collect(splitter.feed("<think>still thinking") + splitter.finish())
        #expect(result.reasoning == "still thinking")
        #expect(result.answer == "")
    }

    @Test func heldBackPrefixIsReleasedAtEnd() {
        var splitter = ReasoningSplitter()
        #expect(collect(splitter.feed("a <thi")).answer == "a ")
        #expect(collect(splitter.finish()).answer == "<thi")
    }
}
