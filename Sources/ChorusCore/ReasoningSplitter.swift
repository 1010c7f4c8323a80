/// A piece of model output: thinking or answer.
public enum OutputSegment: Sendable, Equatable {
    case reasoning(String)
    case answer(String)
}

/// Separates thinking from answer in text that models stream as content:
/// `<think>…</think>answer`, and `<thinking>…</thinking><answer>…</answer>`.
///
/// Tags may be split across chunks at any character: text that could be the start of a tag is
/// held back until the next chunk decides it. Whitespace right after a tag is dropped, so the
/// answer after `</think>\n\n` starts with its first word.
public struct ReasoningSplitter: Sendable {
    private enum Mode { case answer, thinking }

    private static let tags: [(text: String, next: Mode?)] = [
        ("<think>", .thinking), ("</think>", .answer),
        ("<thinking>", .thinking), ("</thinking>", .answer),
        ("<answer>", .answer), ("</answer>", nil),
    ]

    private var mode: Mode = .answer
    private var pending = ""
    private var trimLeadingWhitespace = false

    public init() {}

    /// Feeds a content delta; returns the segments it completes (adjacent ones of one kind merged).
    public mutating func feed(_ text: String) -> [OutputSegment] {
        pending += text
        var output: [OutputSegment] = []
        var plain = ""

        while let lt = pending.firstIndex(of: "<") {
            plain += pending[..<lt]
            let rest = pending[lt...]
            if let tag = Self.tags.first(where: { rest.hasPrefix($0.text) }) {
                emit(&plain, into: &output)
                if let next = tag.next { mode = next }
                trimLeadingWhitespace = true
                pending = String(rest.dropFirst(tag.text.count))
            } else if Self.tags.contains(where: { $0.text.hasPrefix(rest) }) {
                // Could still become a tag: wait for more input.
                pending = String(rest)
                emit(&plain, into: &output)
                return output
            } else {
                plain += "<"
                pending = String(rest.dropFirst())
            }
        }
        plain += pending
        pending = ""
        emit(&plain, into: &output)
        return output
    }

    /// Call at end of stream: text held back as a possible tag is released.
    public mutating func finish() -> [OutputSegment] {
        var plain = pending
        pending = ""
        var output: [OutputSegment] = []
        emit(&plain, into: &output)
        return output
    }

    private mutating func emit(_ text: inout String, into output: inout [OutputSegment]) {
        defer { text = "" }
        var slice = Substring(text)
        if trimLeadingWhitespace {
            slice = slice.drop(while: \.isWhitespace)
            if slice.isEmpty { return }
            trimLeadingWhitespace = false
        }
        guard !slice.isEmpty else { return }
        let segment: OutputSegment = mode == .thinking ? .reasoning(String(slice)) : .answer(String(slice))
        switch (output.last, segment) {
        case (.reasoning(let a)?, .reasoning(let b)): output[output.count - 1] = .reasoning(a + b)
        case (.answer(let a)?, .answer(let b)): output[output.count - 1] = .answer(a + b)
        default: output.append(segment)
        }
    }
}
