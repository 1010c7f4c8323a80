/// The answer's tokens: counted (`t0 t1 ...`) or a list of strings (the words of an echo line,
/// fragments of a JSON answer, a text cut by a stop sequence).
///
/// Counted tokens stay a number, not a list, so the default answer costs nothing to plan.
enum AnswerTokens: Sendable {
    case counted(Int)
    case words([String])

    var count: Int {
        switch self {
        case .counted(let count): count
        case .words(let words): words.count
        }
    }

    subscript(index: Int) -> String {
        switch self {
        case .counted: "t\(index) "
        case .words(let words): words[index]
        }
    }

    var fullText: String {
        switch self {
        case .counted(let count):
            var text = ""
            text.reserveCapacity(count * 4)
            for index in 0..<count {
                text += "t\(index) "
            }
            return text
        case .words(let words):
            return words.joined()
        }
    }

    /// Splits `text` into tokens that each hold one word and the whitespace after it, so the
    /// tokens concatenate back to exactly `text`.
    static func words(of text: String) -> AnswerTokens {
        var words: [String] = []
        var current = ""
        var inWhitespace = false
        for character in text {
            if character.isWhitespace {
                inWhitespace = true
            } else if inWhitespace {
                words.append(current)
                current = ""
                inWhitespace = false
            }
            current.append(character)
        }
        if !current.isEmpty {
            words.append(current)
        }
        return .words(words)
    }

    /// Splits `text` into tokens of at most `length` characters (never inside a character, so
    /// never inside a UTF-8 sequence), the way JSON answers and tool-call arguments stream.
    static func fragments(of text: String, length: Int = 8) -> AnswerTokens {
        .words(self.fragmentStrings(of: text, length: length))
    }

    static func fragmentStrings(of text: String, length: Int = 8) -> [String] {
        var fragments: [String] = []
        var rest = text[...]
        while !rest.isEmpty {
            let end = rest.index(rest.startIndex, offsetBy: length, limitedBy: rest.endIndex) ?? rest.endIndex
            fragments.append(String(rest[..<end]))
            rest = rest[end...]
        }
        return fragments
    }

    /// The first `count` tokens.
    func prefix(_ count: Int) -> AnswerTokens {
        switch self {
        case .counted(let total): .counted(min(total, count))
        case .words(let words): .words(Array(words.prefix(count)))
        }
    }

    /// The tokens before the first occurrence of any of `stops` in the full text, the token
    /// that contains it cut short at it (and dropped when nothing of it is left), or `nil`
    /// when no stop string occurs. Occurrences are found on UTF-8 bytes, as Python's
    /// `str.find` finds them on code points; empty stop strings are ignored.
    func cut(atFirstOf stops: [String]) -> AnswerTokens? {
        let text = Array(self.fullText.utf8)
        var cutOffset: Int?
        for stop in stops where !stop.isEmpty {
            if let offset = Self.firstOffset(of: Array(stop.utf8), in: text, before: cutOffset ?? text.count) {
                cutOffset = offset
            }
        }
        guard let cutOffset else { return nil }
        var words: [String] = []
        var offset = 0
        for index in 0..<self.count {
            let token = self[index]
            let length = token.utf8.count
            if offset + length <= cutOffset {
                words.append(token)
                offset += length
            } else {
                if cutOffset > offset {
                    words.append(String(decoding: token.utf8.prefix(cutOffset - offset), as: UTF8.self))
                }
                break
            }
        }
        return .words(words)
    }

    /// The first offset below `limit` where `needle` starts in `haystack`.
    private static func firstOffset(of needle: [UInt8], in haystack: [UInt8], before limit: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        let last = min(limit - 1, haystack.count - needle.count)
        guard last >= 0 else { return nil }
        for start in 0...last where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) {
                return start
            }
        }
        return nil
    }
}
