import ChorusCore
import Foundation

/// What the terminal can show: colours only on a terminal (and not with NO_COLOR).
enum Terminal {
    static let stdinIsTTY = isatty(STDIN_FILENO) == 1
    static let stdoutIsTTY = isatty(STDOUT_FILENO) == 1
    static let colours = stdoutIsTTY && ProcessInfo.processInfo.environment["NO_COLOR"] == nil

    static func dim(_ text: String) -> String { colours ? "\u{1B}[2m\(text)\u{1B}[22m" : text }
    static func bold(_ text: String) -> String { colours ? "\u{1B}[1m\(text)\u{1B}[22m" : text }
    static func red(_ text: String) -> String { colours ? "\u{1B}[31m\(text)\u{1B}[39m" : text }

    /// Unbuffered, so a streamed token shows at once.
    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    /// Removes control characters (escape sequences above all) from untrusted text, such as model
    /// output, before it reaches the terminal; keeps newlines and tabs.
    static func sanitized(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { scalar in
            scalar == "\n" || scalar == "\t" || !(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value))
        }))
    }

    /// The JSON as one line (for `--json`).
    static func printJSON(_ value: JSONValue) throws {
        write(String(decoding: try value.encoded(), as: UTF8.self) + "\n")
    }

    /// A table: a header row and left-aligned columns separated by two spaces.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n") + "\n"
    }

    /// A time in seconds since 1970 as `2026-12-07 11:22:33` (UTC), or `-`.
    static func time(_ seconds: JSONValue?) -> String {
        guard let seconds = seconds?.intValue else { return "-" }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// A value for a table cell.
    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case nil, .null?: "-"
        case .string(let text)?: sanitized(text).replacingOccurrences(of: "\n", with: " ")
        case let other?: sanitized(String(decoding: (try? other.encoded()) ?? Data(), as: UTF8.self))
        }
    }
}
