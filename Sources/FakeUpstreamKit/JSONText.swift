/// Hand-written JSON text helpers.
///
/// The fake upstream renders its responses as text rather than through `JSONEncoder`: the
/// shapes are fixed, the values are few, and benchmarks drive it at thousands of requests a
/// second. Only strings that come from the client (model names, echoed text) need escaping.
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
}
