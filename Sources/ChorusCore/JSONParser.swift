/// A strict RFC 8259 JSON parser that reads UTF-8 bytes straight into a `JSONValue`.
///
/// It replaces `JSONDecoder` on the hot paths (request bodies; every streamed upstream chunk goes
/// through the same reader, via `JSONFields`): one pass over the bytes, no intermediate
/// representation, strings without escapes are created directly from the input, and objects are
/// built with their final capacity.
///
/// - Numbers: an integer literal (no fraction, no exponent) that fits in `Int` is `.int`; any
///   other number is `.double`, parsed from its exact text. Numbers out of `Double`'s range are
///   errors (`NaN` and `Infinity` are not JSON).
/// - Strings: every escape including `\uXXXX` and surrogate pairs (an unpaired surrogate is an
///   error); unescaped control characters and invalid UTF-8 are errors.
/// - Objects: for a key that appears twice, the last value wins.
/// - No trailing commas, no leading zeros, nothing after the value but whitespace, nesting at
///   most `maxDepth` arrays and objects deep. A leading UTF-8 byte order mark is skipped, as
///   RFC 8259 §8.1 allows.
///
/// Errors are `ChorusError.invalidRequest` with code `invalid_json`, naming the byte offset.
public enum JSONParser {
    /// The deepest nesting of arrays and objects accepted (as with `JSONDecoder`).
    public static let maxDepth = 512

    /// Parses one JSON text from bytes; uses the bytes in place when they are contiguous.
    public static func parse(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        if let value = try bytes.withContiguousStorageIfAvailable({ try parse(bytes: $0) }) {
            return value
        }
        return try Array(bytes).withUnsafeBufferPointer { try parse(bytes: $0) }
    }

    /// Parses one JSON text from raw bytes.
    public static func parse(_ buffer: UnsafeRawBufferPointer) throws -> JSONValue {
        try parse(bytes: UnsafeBufferPointer(start: buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), count: buffer.count))
    }

    private static func parse(bytes: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        do {
            var reader = JSONByteReader(bytes)
            return try reader.parseDocument()
        } catch {
            throw invalid(error)
        }
    }

    static func invalid(_ error: JSONSyntaxError) -> ChorusError {
        .invalidRequest(message: "We could not parse the JSON body of your request. (\(error.description))", param: nil, code: "invalid_json")
    }
}

/// Why a JSON text is malformed, and where (a byte offset from the start of the input).
struct JSONSyntaxError: Error, CustomStringConvertible {
    enum Reason {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case expectedValue
        case expectedKey
        case expectedColon
        case expectedCommaOrBracket
        case expectedCommaOrBrace
        case trailingComma
        case leadingZero
        case expectedDigit
        case numberOutOfRange
        case invalidEscape
        case invalidUnicodeEscape
        case unpairedSurrogate
        case controlCharacter
        case invalidUTF8
        case unterminatedString
        case tooDeep
        case trailingData
    }

    var reason: Reason
    var offset: Int

    var description: String {
        let what: String
        switch reason {
        case .unexpectedEnd: what = "unexpected end of input"
        case .unexpectedByte(let byte): what = "unexpected \(Self.describe(byte))"
        case .expectedValue: what = "expected a value"
        case .expectedKey: what = "expected a string key"
        case .expectedColon: what = "expected ':' after an object key"
        case .expectedCommaOrBracket: what = "expected ',' or ']' in an array"
        case .expectedCommaOrBrace: what = "expected ',' or '}' in an object"
        case .trailingComma: what = "trailing comma"
        case .leadingZero: what = "leading zero in a number"
        case .expectedDigit: what = "expected a digit in a number"
        case .numberOutOfRange: what = "number out of range"
        case .invalidEscape: what = "invalid escape sequence in a string"
        case .invalidUnicodeEscape: what = "invalid \\u escape in a string"
        case .unpairedSurrogate: what = "unpaired UTF-16 surrogate in a \\u escape"
        case .controlCharacter: what = "unescaped control character in a string"
        case .invalidUTF8: what = "invalid UTF-8"
        case .unterminatedString: what = "unterminated string"
        case .tooDeep: what = "arrays and objects nested more than \(JSONParser.maxDepth) deep"
        case .trailingData: what = "unexpected data after the JSON value"
        }
        return "\(what) at byte offset \(offset)"
    }

    private static func describe(_ byte: UInt8) -> String {
        if byte > 0x20 && byte < 0x7F { return "character '\(Character(Unicode.Scalar(byte)))'" }
        let hex = String(byte, radix: 16, uppercase: true)
        return "byte 0x\(hex.count == 1 ? "0" + hex : hex)"
    }
}
