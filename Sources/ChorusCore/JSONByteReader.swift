/// The parser proper: a cursor over the input and reusable buffers.
struct JSONByteReader {
    private struct Member {
        var key: String
        var value: JSONValue
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private var index = 0
    private var depth = 0
    /// Decoded bytes of the string being read, when it has escapes.
    private var scratch: [UInt8] = []
    /// Members of the objects being read, innermost last; an object takes its own off the end.
    private var members: [Member] = []
    /// Elements of the arrays being read, innermost last.
    private var elements: [JSONValue] = []

    init(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int = 0) {
        self.bytes = bytes
        self.index = index
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        try document { reader throws(JSONSyntaxError) in try reader.parseValue() }
    }

    /// Checks the document as `parseDocument` does, building nothing; returns the root.
    mutating func checkDocument() throws(JSONSyntaxError) -> JSONFields.Value {
        try document { reader throws(JSONSyntaxError) in try reader.skipValue() }
    }

    /// One JSON text read by `read`: a UTF-8 byte order mark may come first, and only whitespace after.
    private mutating func document<Value>(_ read: (inout JSONByteReader) throws(JSONSyntaxError) -> Value) throws(JSONSyntaxError) -> Value {
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { index = 3 }
        let value = try read(&self)
        skipWhitespace()
        guard index == bytes.count else { throw JSONSyntaxError(reason: .trailingData, offset: index) }
        return value
    }

    // MARK: Values

    /// Checks the value at the cursor as `parseValue` does and moves past it without building it.
    mutating func skipValue() throws(JSONSyntaxError) -> JSONFields.Value {
        skipWhitespace()
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        let start = index
        switch bytes[index] {
        case ASCII.quote:
            try skipString()
            return JSONFields.Value(kind: .string, offset: start)
        case ASCII.openBrace:
            var more = try enterObject()
            while more {
                _ = try readKey()
                _ = try skipValue()
                more = try nextMember()
            }
            return JSONFields.Value(kind: .object, offset: start)
        case ASCII.openBracket:
            var more = try enterArray()
            while more {
                _ = try skipValue()
                more = try nextElement()
            }
            return JSONFields.Value(kind: .array, offset: start)
        case ASCII.minus, ASCII.zero...ASCII.nine:
            _ = try parseNumber()
            return JSONFields.Value(kind: .number, offset: start)
        default:
            let value = try parseValue()
            return JSONFields.Value(kind: value == .null ? .null : .bool, offset: start)
        }
    }

    // Objects and arrays are read a step at a time: `enterObject`, then for each member
    // `readKey`, its value and `nextMember`; `enterArray`, then each element and `nextElement`.

    /// At an object's `{`: moves into it; false when it is empty (and moves past its `}`).
    mutating func enterObject() throws(JSONSyntaxError) -> Bool {
        try enterContainer(closing: ASCII.closeBrace)
    }

    /// After a member's value: true at a `,` (and moves past it), false at the object's `}`.
    mutating func nextMember() throws(JSONSyntaxError) -> Bool {
        try nextInContainer(closing: ASCII.closeBrace, otherwise: .expectedCommaOrBrace)
    }

    /// At an array's `[`: moves into it; false when it is empty (and moves past its `]`).
    mutating func enterArray() throws(JSONSyntaxError) -> Bool {
        try enterContainer(closing: ASCII.closeBracket)
    }

    /// After an element: true at a `,` (and moves past it), false at the array's `]`.
    mutating func nextElement() throws(JSONSyntaxError) -> Bool {
        try nextInContainer(closing: ASCII.closeBracket, otherwise: .expectedCommaOrBracket)
    }

    /// Reads a member's key and its colon, leaving the cursor before the value.
    mutating func readKey() throws(JSONSyntaxError) -> JSONFields.Key {
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        guard bytes[index] == ASCII.quote else { throw JSONSyntaxError(reason: .expectedKey, offset: index) }
        let open = index
        index += 1
        let key: JSONFields.Key
        if try scanPlainBytes(open: open) {
            key = .raw(UnsafeBufferPointer(rebasing: bytes[open + 1..<index]))
            index += 1
        } else {
            key = .decoded(try parseEscapedString(open: open, start: open + 1))
        }
        skipWhitespace()
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        guard bytes[index] == ASCII.colon else { throw JSONSyntaxError(reason: .expectedColon, offset: index) }
        index += 1
        return key
    }

    private mutating func enterContainer(closing close: UInt8) throws(JSONSyntaxError) -> Bool {
        depth += 1
        guard depth <= JSONParser.maxDepth else { throw JSONSyntaxError(reason: .tooDeep, offset: index) }
        index += 1
        skipWhitespace()
        guard index < bytes.count && bytes[index] == close else { return true }
        index += 1
        depth -= 1
        return false
    }

    private mutating func nextInContainer(closing close: UInt8, otherwise reason: JSONSyntaxError.Reason) throws(JSONSyntaxError) -> Bool {
        skipWhitespace()
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        switch bytes[index] {
        case ASCII.comma:
            index += 1
            skipWhitespace()
            if index < bytes.count && bytes[index] == close { throw JSONSyntaxError(reason: .trailingComma, offset: index) }
            return true
        case close:
            index += 1
            depth -= 1
            return false
        default:
            throw JSONSyntaxError(reason: reason, offset: index)
        }
    }

    mutating func parseValue() throws(JSONSyntaxError) -> JSONValue {
        skipWhitespace()
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        switch bytes[index] {
        case ASCII.quote: return .string(try parseString())
        case ASCII.openBrace: return try parseObject()
        case ASCII.openBracket: return try parseArray()
        case ASCII.minus, ASCII.zero...ASCII.nine: return try parseNumber()
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case let byte: throw JSONSyntaxError(reason: .unexpectedByte(byte), offset: index)
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        let expected = UnsafeRawBufferPointer(start: literal.utf8Start, count: count)
        for offset in 0..<count {
            guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
            guard bytes[index] == expected[offset] else { throw JSONSyntaxError(reason: .unexpectedByte(bytes[index]), offset: index) }
            index += 1
        }
    }

    private mutating func parseArray() throws(JSONSyntaxError) -> JSONValue {
        let start = elements.count
        var more = try enterArray()
        while more {
            elements.append(try parseValue())
            more = try nextElement()
        }
        let array = Array(elements[start...])
        elements.removeSubrange(start...)
        return .array(array)
    }

    private mutating func parseObject() throws(JSONSyntaxError) -> JSONValue {
        let start = members.count
        var more = try enterObject()
        while more {
            let key: String = switch try readKey() {
            case .raw(let bytes): String(decoding: bytes, as: UTF8.self)
            case .decoded(let key): key
            }
            members.append(Member(key: key, value: try parseValue()))
            more = try nextMember()
        }
        var object = [String: JSONValue](minimumCapacity: members.count - start)
        for member in members[start...] { object[member.key] = member.value }
        members.removeSubrange(start...)
        return .object(object)
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = index
        let negative = bytes[index] == ASCII.minus
        if negative { index += 1 }
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        var magnitude: UInt64 = 0
        var overflow = false
        if bytes[index] == ASCII.zero {
            index += 1
            if index < bytes.count && isDigit(bytes[index]) { throw JSONSyntaxError(reason: .leadingZero, offset: start) }
        } else if isDigit(bytes[index]) {
            while index < bytes.count, isDigit(bytes[index]) {
                let (times10, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times10.addingReportingOverflow(UInt64(bytes[index] &- ASCII.zero))
                magnitude = sum
                overflow = overflow || o1 || o2
                index += 1
            }
        } else {
            throw JSONSyntaxError(reason: .expectedDigit, offset: index)
        }
        var integral = true
        if index < bytes.count && bytes[index] == ASCII.dot {
            integral = false
            index += 1
            try skipDigits()
        }
        if index < bytes.count && (bytes[index] == ASCII.lowerE || bytes[index] == ASCII.upperE) {
            integral = false
            index += 1
            if index < bytes.count && (bytes[index] == ASCII.plus || bytes[index] == ASCII.minus) { index += 1 }
            try skipDigits()
        }
        if integral && !overflow {
            if !negative && magnitude <= UInt64(Int.max) { return .int(Int(magnitude)) }
            if negative && magnitude <= UInt64(Int.max) + 1 { return .int(Int(truncatingIfNeeded: 0 &- magnitude)) }
        }
        // Anything else goes through the standard library's correctly rounded conversion of the
        // exact text (numbers are short: usually a small string, so no allocation).
        let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let double = Double(text), double.isFinite else { throw JSONSyntaxError(reason: .numberOutOfRange, offset: start) }
        return .double(double)
    }

    /// Skips one or more digits.
    private mutating func skipDigits() throws(JSONSyntaxError) {
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        guard isDigit(bytes[index]) else { throw JSONSyntaxError(reason: .expectedDigit, offset: index) }
        repeat { index += 1 } while index < bytes.count && isDigit(bytes[index])
    }

    @inline(__always)
    private func isDigit(_ byte: UInt8) -> Bool {
        byte &- ASCII.zero < 10
    }

    // MARK: Strings

    /// Reads a string; `index` is at its opening quote and ends past its closing quote.
    mutating func parseString() throws(JSONSyntaxError) -> String {
        let open = index
        index += 1
        let start = index
        // Fast path: no escapes, so the string is the input bytes as they are.
        guard try scanPlainBytes(open: open) else { return try parseEscapedString(open: open, start: start) }
        let string = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        index += 1
        return string
    }

    /// Checks the string at the cursor as `parseString` does and moves past it, making no `String`
    /// (unless it has escapes).
    private mutating func skipString() throws(JSONSyntaxError) {
        let open = index
        index += 1
        if try scanPlainBytes(open: open) {
            index += 1
        } else {
            _ = try parseEscapedString(open: open, start: open + 1)
        }
    }

    /// Inside the string opened at `open`: checks and moves over its bytes up to the closing quote
    /// (true) or the first backslash (false), leaving `index` there.
    @inline(__always)
    private mutating func scanPlainBytes(open: Int) throws(JSONSyntaxError) -> Bool {
        while index < bytes.count {
            let byte = bytes[index]
            if byte == ASCII.quote { return true }
            if byte == ASCII.backslash { return false }
            if byte < 0x20 { throw JSONSyntaxError(reason: .controlCharacter, offset: index) }
            if byte < 0x80 {
                index += 1
            } else {
                index += try validateUTF8Sequence(at: index)
            }
        }
        throw JSONSyntaxError(reason: .unterminatedString, offset: open)
    }

    /// The slow path of `parseString`, from the first backslash: decodes into `scratch`.
    private mutating func parseEscapedString(open: Int, start: Int) throws(JSONSyntaxError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case ASCII.quote:
                index += 1
                return String(decoding: scratch, as: UTF8.self)
            case ASCII.backslash:
                try readEscape()
            case 0..<0x20:
                throw JSONSyntaxError(reason: .controlCharacter, offset: index)
            case 0x20..<0x80:
                scratch.append(byte)
                index += 1
            default:
                let length = try validateUTF8Sequence(at: index)
                scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<index + length]))
                index += length
            }
        }
        throw JSONSyntaxError(reason: .unterminatedString, offset: open)
    }

    /// Decodes the escape at `index` (a backslash) onto `scratch`.
    private mutating func readEscape() throws(JSONSyntaxError) {
        let escape = index
        index += 1
        guard index < bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: index) }
        let decoded: UInt8
        switch bytes[index] {
        case ASCII.quote: decoded = ASCII.quote
        case ASCII.backslash: decoded = ASCII.backslash
        case ASCII.slash: decoded = ASCII.slash
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = ASCII.newline
        case UInt8(ascii: "r"): decoded = ASCII.carriageReturn
        case UInt8(ascii: "t"): decoded = ASCII.tab
        case UInt8(ascii: "u"):
            index += 1
            var scalar = UInt32(try readHex4())
            switch scalar {
            case 0xD800..<0xDC00:
                guard index + 1 < bytes.count, bytes[index] == ASCII.backslash, bytes[index + 1] == UInt8(ascii: "u") else {
                    throw JSONSyntaxError(reason: .unpairedSurrogate, offset: escape)
                }
                index += 2
                let low = UInt32(try readHex4())
                guard (0xDC00..<0xE000).contains(low) else { throw JSONSyntaxError(reason: .unpairedSurrogate, offset: escape) }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            case 0xDC00..<0xE000:
                throw JSONSyntaxError(reason: .unpairedSurrogate, offset: escape)
            default:
                break
            }
            appendUTF8(scalar)
            return
        default:
            throw JSONSyntaxError(reason: .invalidEscape, offset: escape)
        }
        scratch.append(decoded)
        index += 1
    }

    /// Reads four hex digits at `index`.
    private mutating func readHex4() throws(JSONSyntaxError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw JSONSyntaxError(reason: .unexpectedEnd, offset: bytes.count) }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONSyntaxError(reason: .invalidUnicodeEscape, offset: index)
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Checks the multi-byte UTF-8 sequence at `offset` (Unicode Table 3-7: no overlong forms,
    /// no surrogates, nothing above U+10FFFF) and returns its length.
    private func validateUTF8Sequence(at offset: Int) throws(JSONSyntaxError) -> Int {
        let lead = bytes[offset]
        let length: Int
        var low: UInt8 = 0x80
        var high: UInt8 = 0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; low = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; high = 0x9F
        case 0xF0: length = 4; low = 0x90
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; high = 0x8F
        default: throw JSONSyntaxError(reason: .invalidUTF8, offset: offset)
        }
        guard offset + length <= bytes.count else { throw JSONSyntaxError(reason: .invalidUTF8, offset: offset) }
        let second = bytes[offset + 1]
        guard second >= low && second <= high else { throw JSONSyntaxError(reason: .invalidUTF8, offset: offset) }
        var next = offset + 2
        while next < offset + length {
            guard bytes[next] & 0xC0 == 0x80 else { throw JSONSyntaxError(reason: .invalidUTF8, offset: offset) }
            next += 1
        }
        return length
    }

    // MARK: Whitespace

    @inline(__always)
    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case ASCII.space, ASCII.newline, ASCII.carriageReturn, ASCII.tab: index += 1
            default: return
            }
        }
    }
}

/// The bytes JSON is made of, by name.
enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}
