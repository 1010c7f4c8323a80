/// Hand-written JSON text helpers.
///
/// The fake upstream renders its responses as text rather than through `JSONEncoder`: the
/// shapes are fixed, the values are few, and benchmarks drive it at thousands of requests a
/// second. Only strings that come from the client (model names, echoed text) need escaping.
///
/// JSON that the fake *generates as answer text* (tool-call arguments, JSON-mode answers) is
/// written the way Python's `json.dumps(value, separators=(",", ":"), sort_keys=True)` writes
/// it (`appendPythonString`), so a test can predict it byte for byte with one call.
enum JSONText {
    /// Appends `value` as a quoted JSON string literal.
    static func appendString(_ value: some StringProtocol, to output: inout String) {
        output.append("\"")
        appendEscaped(value, to: &output)
        output.append("\"")
    }

    /// `value` as a quoted JSON string literal.
    static func quoted(_ value: some StringProtocol) -> String {
        var output = ""
        output.reserveCapacity(value.utf8.count + 2)
        appendString(value, to: &output)
        return output
    }

    /// Appends the escaped body of a JSON string literal (without the quotes).
    static func appendEscaped(_ value: some StringProtocol, to output: inout String) {
        guard value.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            output.append(contentsOf: value)
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output.append("\\\"")
            case "\\": output.append("\\\\")
            case "\n": output.append("\\n")
            case "\r": output.append("\\r")
            case "\t": output.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                output.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default:
                output.unicodeScalars.append(scalar)
            }
        }
    }

    /// Appends `value` as a quoted JSON string literal escaped exactly as Python's `json.dumps`
    /// does by default (`ensure_ascii=True`): `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, and every
    /// other scalar outside printable ASCII as lowercase `\uXXXX` (a surrogate pair above U+FFFF).
    static func appendPythonString(_ value: some StringProtocol, to output: inout String) {
        output.append("\"")
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output.append("\\\"")
            case "\\": output.append("\\\\")
            case "\n": output.append("\\n")
            case "\r": output.append("\\r")
            case "\t": output.append("\\t")
            case "\u{08}": output.append("\\b")
            case "\u{0C}": output.append("\\f")
            case " "..."~": output.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x10000 {
                    appendUnicodeEscape(scalar.value, to: &output)
                } else {
                    let offset = scalar.value - 0x10000
                    appendUnicodeEscape(0xD800 | (offset >> 10), to: &output)
                    appendUnicodeEscape(0xDC00 | (offset & 0x3FF), to: &output)
                }
            }
        }
        output.append("\"")
    }

    /// `\u` and four lowercase hex digits.
    private static func appendUnicodeEscape(_ value: UInt32, to output: inout String) {
        let hex = String(value, radix: 16)
        output.append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
    }

    /// Appends the UTF-8 bytes of `value` as a JSON array of integers (`[104,105]`).
    static func appendByteArray(of value: some StringProtocol, to output: inout String) {
        output.append("[")
        var first = true
        for byte in value.utf8 {
            if !first { output.append(",") }
            first = false
            output.append(String(byte))
        }
        output.append("]")
    }
}
