import ChorusCore
import Foundation
import Testing

@Suite struct JSONParserTests {
    private func parse(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }

    /// The message of the `invalid_json` error `bytes` are rejected with (nil when they parse).
    private func rejection(_ bytes: [UInt8]) -> String? {
        do {
            _ = try JSONValue.parse(bytes)
            return nil
        } catch let error as ChorusError {
            guard case .invalidRequest(let message, let param, let code) = error, param == nil, code == "invalid_json" else {
                return "unexpected error \(error)"
            }
            return message
        } catch {
            return "unexpected error \(error)"
        }
    }

    @Test func scalars() throws {
        #expect(try parse("null") == .null)
        #expect(try parse("true") == .bool(true))
        #expect(try parse("false") == .bool(false))
        #expect(try parse("0") == .int(0))
        #expect(try parse("\"\"") == .string(""))
        #expect(try parse("\"hi\"") == .string("hi"))
        #expect(try parse(" \t\r\n 42 \t\r\n ") == .int(42))
    }

    @Test func containers() throws {
        #expect(try parse("[]") == .array([]))
        #expect(try parse("{}") == .object([:]))
        #expect(try parse(" [ ] ") == .array([]))
        #expect(try parse(" { } ") == .object([:]))
        #expect(try parse(#"[1, "two", 3.5, true, false, null, [], {}]"#) == .array([.int(1), .string("two"), .double(3.5), .bool(true), .bool(false), .null, .array([]), .object([:])]))
        let request = """
            {
              "model": "qwen",
              "stream": true,
              "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": null}],
              "temperature": 0.7,
              "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
            }
            """
        #expect(try parse(request) == .object([
            "model": .string("qwen"),
            "stream": .bool(true),
            "messages": .array([
                .object(["role": .string("user"), "content": .string("hi")]),
                .object(["role": .string("assistant"), "content": .null]),
            ]),
            "temperature": .double(0.7),
            "tools": .array([.object(["type": .string("function"), "function": .object([
                "name": .string("f"),
                "parameters": .object(["type": .string("object"), "properties": .object([:])]),
            ])])]),
        ]))
    }

    @Test func duplicateKeysLastWins() throws {
        #expect(try parse(#"{"a": 1, "b": 2, "a": 3}"#) == .object(["a": .int(3), "b": .int(2)]))
        #expect(try parse(#"{"a": {"x": 1}, "a": null}"#) == .object(["a": .null]))
    }

    @Test func escapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#) == .string("\"\\/\u{08}\u{0C}\n\r\t"))
        #expect(try parse(#""\u0041\u00e9\u00E9\u20ac\u0000\u001f""#) == .string("Aéé€\u{0}\u{1F}"))
        #expect(try parse(#""a\u0062c""#) == .string("abc"))
        #expect(try parse(#""\ud83d\ude00 \uD83C\uDFB5""#) == .string("😀 🎵"))
        #expect(try parse(#""\udbff\udfff""#) == .string("\u{10FFFF}"))
        #expect(try parse(#""\uffff\ufeff""#) == .string("\u{FFFF}\u{FEFF}"))
        // Raw multi-byte UTF-8 before, between and after escapes.
        #expect(try parse("\"é中😀\\n🎵\\u00e9x€\"") == .string("é中😀\n🎵éx€"))
        #expect(try parse("{\"k\\u00e9y\": \"v\"}") == .object(["kéy": .string("v")]))
        // Characters JSON does not require escaping, including DEL and U+2028.
        #expect(try parse("\"\u{7F}\u{2028}\u{2029}/\"") == .string("\u{7F}\u{2028}\u{2029}/"))
    }

    @Test func numbers() throws {
        #expect(try parse("-0") == .int(0))
        #expect(try parse("123") == .int(123))
        #expect(try parse("-123") == .int(-123))
        #expect(try parse("9223372036854775807") == .int(Int.max))
        #expect(try parse("-9223372036854775808") == .int(Int.min))
        // Integers that do not fit in Int, and anything with a fraction or exponent, are doubles.
        #expect(try parse("9223372036854775808") == .double(9223372036854775808))
        #expect(try parse("-9223372036854775809") == .double(-0x1p63))
        #expect(try parse("12345678901234567890123") == .double(1.2345678901234568e22))
        #expect(try parse("1.0") == .double(1))
        #expect(try parse("-0.0") == .double(-0.0))
        #expect(try parse("1e2") == .double(100))
        #expect(try parse("1E+2") == .double(100))
        #expect(try parse("25e-1") == .double(2.5))
        #expect(try parse("-1.5e10") == .double(-1.5e10))
        #expect(try parse("0.1") == .double(0.1))
        #expect(try parse("123.456e-7") == .double(1.23456e-05))
        #expect(try parse("1e-400") == .double(0))
        #expect(try parse("1.7976931348623157e308") == .double(.greatestFiniteMagnitude))
        #expect(try parse("2.2250738585072014e-308") == .double(.leastNormalMagnitude))
        #expect(try parse("5e-324") == .double(.leastNonzeroMagnitude))
        // Round trip: the exact text, correctly rounded.
        #expect(try parse("9007199254740993.0") == .double(0x1p53))  // halfway: rounds to even
        #expect(try parse("9007199254740995.0") == .double(0x1p53 + 4))
        for value in [0.1, 1.0 / 3, .pi, 1e-7, 123456.789, 4.35, 2.675, 1e22, 1e23] {
            #expect(try parse("\(value)") == .double(value))
            #expect(try parse("[\(value)]") == .array([.double(value)]))
        }
    }

    @Test func nestingLimit() throws {
        func nested(_ depth: Int) -> [UInt8] {
            Array((String(repeating: "[", count: depth) + String(repeating: "]", count: depth)).utf8)
        }
        #expect(JSONParser.maxDepth == 512)
        var value = try JSONValue.parse(nested(512))
        var depth = 0
        while case .array(let items) = value {
            depth += 1
            value = items.first ?? .null
        }
        #expect(depth == 512)
        #expect(rejection(nested(513))?.contains("nested more than 512 deep at byte offset 512") == true)
        #expect(rejection(nested(100_000)) != nil)
        let objects = String(repeating: #"{"a":"#, count: 512) + "1" + String(repeating: "}", count: 512)
        #expect(try JSONValue.parse(Array(objects.utf8)) != .null)
        #expect(rejection(Array(("[" + objects + "]").utf8)) != nil)
    }

    @Test func byteOrderMarkIsSkipped() throws {
        #expect(try JSONValue.parse([0xEF, 0xBB, 0xBF] + Array("[1]".utf8)) == .array([.int(1)]))
        #expect(rejection([0xEF, 0xBB, 0xBF]) != nil)
        #expect(rejection(Array("[1]".utf8) + [0xEF, 0xBB, 0xBF]) != nil)
    }

    @Test func inputKinds() throws {
        let text = #"{"a": [1, "x"]}"#
        let expected = JSONValue.object(["a": .array([.int(1), .string("x")])])
        #expect(try JSONValue.parse(Array(text.utf8)) == expected)
        #expect(try JSONValue.parse(text.utf8) == expected)
        #expect(try JSONValue.parse(Data(text.utf8)) == expected)
        #expect(try JSONValue.parse(Array(text.utf8)[...]) == expected)
        // Not contiguous: copied first.
        #expect(try JSONValue.parse(text.utf8.lazy.map { $0 }) == expected)
        #expect(try JSONValue.parse(AnySequence(Array(text.utf8))) == expected)
        #expect(try JSONParser.parse(text.utf8) == expected)
        #expect(try Array(text.utf8).withUnsafeBytes { try JSONParser.parse($0) } == expected)
        #expect(throws: ChorusError.self) { try JSONParser.parse(UnsafeRawBufferPointer(start: nil, count: 0)) }
    }

    @Test func errorsKeepTheirShape() {
        #expect(rejection(Array("{nope".utf8)) == "We could not parse the JSON body of your request. (expected a string key at byte offset 1)")
        #expect(rejection(Array(#"{"model": "#.utf8)) == "We could not parse the JSON body of your request. (unexpected end of input at byte offset 10)")
        #expect(rejection([]) == "We could not parse the JSON body of your request. (unexpected end of input at byte offset 0)")
        #expect(rejection(Array("[1,]".utf8))?.hasSuffix("(trailing comma at byte offset 3)") == true)
        #expect(rejection(Array("[1] x".utf8))?.hasSuffix("(unexpected data after the JSON value at byte offset 4)") == true)
        #expect(rejection(Array("@".utf8))?.hasSuffix("(unexpected character '@' at byte offset 0)") == true)
        #expect(rejection([0x22, 0x61, 0xFF, 0x22])?.hasSuffix("(invalid UTF-8 at byte offset 2)") == true)
        #expect(rejection(Array("\"a\u{1}\"".utf8))?.hasSuffix("(unescaped control character in a string at byte offset 2)") == true)
        #expect(rejection(Array(#"["\ud800"]"#.utf8))?.hasSuffix("(unpaired UTF-16 surrogate in a \\u escape at byte offset 2)") == true)
    }

    static let invalidDocuments: [(String, [UInt8])] = {
        var cases: [(String, [UInt8])] = [
            "", " ", "\n\t", "[", "]", "{", "}", "[1", "[1,", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,",
            "[1,]", "[1,,2]", "[,1]", "[,]", "{\"a\":1,}", "{,}", "{\"a\":1,,\"b\":2}", "[\"a\",]",
            "[1 2]", "[1;2]", "{\"a\" 1}", "{\"a\":}", "{\"a\"::1}", "{1:2}", "{'a':1}", "{a:1}", "{\"a\":1 \"b\":2}", "[}", "{]",
            "01", "-01", "00", "-00", "012.5", "1.", "-1.", ".5", "-.5", "-", "+1", "--1", "1e", "1e+", "1E-", "1.e5", "1.5e", "1ee5", "0x10", "1_000", "1.5.2",
            "NaN", "-NaN", "nan", "Infinity", "-Infinity", "infinity", "1e400", "-1e400", "1e99999999999999999999",
            "tru", "nul", "fals", "True", "NULL", "truex", "nulll", "[true false]",
            "\"abc", "\"", "\"\\", "\"\\\"", "[\"a]",
            "\"\\x\"", "\"\\a\"", "\"\\U0041\"", "\"\\'\"", "\"\\u12\"", "\"\\u12G4\"", "\"\\u\"", "\"\\u-123\"",
            "\"\\ud800\"", "\"\\udbff\"", "\"\\udc00\"", "\"\\udfff\"", "\"\\ud800\\u0041\"", "\"\\ud800x\"", "\"\\ud800\\ud800\"", "\"\\ude00\\ud83d\"", "\"\\ud800\\\"",
            "\"a\tb\"", "\"a\nb\"", "\"a\rb\"", "\"\u{0}\"", "\"\u{1F}\"",
            "[1] x", "1 2", "{} {}", "[][]", "\"a\"\u{0}", "null,", "1]",
            "//c\n1", "/*c*/1", "[1]//", "#1", "\u{A0}1", "\u{0C}1", "\u{0B}1", "1\u{0C}", " \u{FEFF}1", "\u{FEFF}\u{FEFF}1",
        ]
        .map { ($0.debugDescription, Array($0.utf8)) }
        let rawBytes: [(String, [UInt8])] = [
            ("invalid byte FF", [0x22, 0xFF, 0x22]),
            ("invalid byte FE", [0x22, 0xFE, 0x22]),
            ("lone continuation byte", [0x22, 0x80, 0x22]),
            ("overlong slash C0 AF", [0x22, 0xC0, 0xAF, 0x22]),
            ("overlong C1 BF", [0x22, 0xC1, 0xBF, 0x22]),
            ("overlong E0 80 AF", [0x22, 0xE0, 0x80, 0xAF, 0x22]),
            ("overlong F0 80 80 AF", [0x22, 0xF0, 0x80, 0x80, 0xAF, 0x22]),
            ("UTF-8 encoded surrogate ED A0 80", [0x22, 0xED, 0xA0, 0x80, 0x22]),
            ("UTF-8 encoded surrogate ED BF BF", [0x22, 0xED, 0xBF, 0xBF, 0x22]),
            ("above U+10FFFF F4 90 80 80", [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22]),
            ("lead byte F5", [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22]),
            ("truncated 2-byte sequence", [0x22, 0xC3, 0x22]),
            ("truncated 3-byte sequence", [0x22, 0xE2, 0x82, 0x22]),
            ("truncated 4-byte sequence", [0x22, 0xF0, 0x9F, 0x98, 0x22]),
            ("sequence cut by the end", [0x22, 0xE2, 0x82]),
            ("invalid UTF-8 after an escape", Array(#""\n"#.utf8) + [0xFF, 0x22]),
            ("invalid UTF-8 in a key", [0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]),
            ("invalid UTF-8 outside a string", [0x5B, 0xFF, 0x5D]),
            ("UTF-16LE", Array("[1]".utf16).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }),
            ("NUL after the value", [0x31, 0x00]),
            ("nested 513 deep", Array((String(repeating: "[", count: 513) + String(repeating: "]", count: 513)).utf8)),
        ]
        cases += rawBytes
        return cases
    }()

    @Test(arguments: invalidDocuments)
    func rejects(_ name: String, _ bytes: [UInt8]) {
        let message = rejection(bytes)
        #expect(message?.hasPrefix("We could not parse the JSON body of your request. (") == true, "\(name) was accepted: \(message ?? "no error")")
        #expect(message?.contains("at byte offset ") == true, "\(name): \(message ?? "no error")")
    }

    // MARK: JSONFields

    /// The value `JSONFields` sees, rebuilt by walking it member by member and element by element.
    private func walk(_ fields: JSONFields, _ value: JSONFields.Value) throws -> JSONValue {
        switch value.kind {
        case .object:
            var object: [String: JSONValue] = [:]
            try fields.members(of: value) { key, member in
                switch key {
                case .raw(let bytes): object[String(decoding: bytes, as: UTF8.self)] = try walk(fields, member)
                case .decoded(let name): object[name] = try walk(fields, member)
                }
            }
            return .object(object)
        case .array:
            var array: [JSONValue] = []
            try fields.elements(of: value) { array.append(try walk(fields, $0)) }
            return .array(array)
        case .string: return .string(try fields.string(value))
        case .number, .bool, .null:
            let scalar = try fields.value(value)
            switch (value.kind, scalar) {
            case (.number, .int), (.number, .double), (.bool, .bool), (.null, .null): return scalar
            default: throw CancellationError()
            }
        }
    }

    @Test(arguments: invalidDocuments)
    func fieldsRejectWhatTheParserRejects(_ name: String, _ bytes: [UInt8]) throws {
        guard let text = String(validating: bytes, as: UTF8.self) else { return }  // a String cannot hold it
        var message: String?
        do {
            try JSONFields.read(text) { _, _ in }
        } catch let error as ChorusError {
            if case .invalidRequest(let text, nil, "invalid_json") = error { message = text }
        }
        #expect(message != nil && message == rejection(bytes), "\(name)")
    }

    @Test func fieldsSeeWhatTheParserBuilds() throws {
        var generator = SplitMix64(seed: 0xF1E1_D5)
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys]
        for round in 0..<200 {
            let value = randomValue(depth: round % 5, using: &generator)
            for data in [try JSONEncoder.compact.encode(value), try pretty.encode(value)] {
                let text = String(decoding: data, as: UTF8.self)
                let (whole, walked) = try JSONFields.read(text) { fields, root in
                    (try fields.value(root), try walk(fields, root))
                }
                #expect(whole == value, "round \(round)")
                #expect(walked == value, "round \(round): \(text)")
            }
        }
    }

    @Test func fieldKeysMatchByName() throws {
        // An escaped key is decoded before it is compared; a repeated key is seen each time.
        let text = #"{"a\u0062":1, "ab":2, "abc":{"x":[true,null]}, "a":3}"#
        var seen: [String] = []
        try JSONFields.read(text) { fields, root in
            try fields.members(of: root) { key, value in
                if key == "ab" { seen.append("ab=\(try fields.value(value))") }
                if key == "abc" { seen.append("abc:\(value.kind)") }
                if key == "a" { seen.append("a") }
                if key == "b" || key == "abcd" || key == "" { seen.append("wrong") }
            }
        }
        #expect(seen == ["ab=int(1)", "ab=int(2)", "abc:object", "a"])
    }

    // MARK: Differential test against Foundation

    @Test func agreesWithFoundationOnRandomDocuments() throws {
        var generator = SplitMix64(seed: 0x5EED_1234)
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.prettyPrinted, .sortedKeys]
        let escapingSlashes = JSONEncoder()
        for round in 0..<200 {
            let value = randomValue(depth: round % 5, using: &generator)
            // `encoded()` (Chorus's own writer) must read back as the same value too.
            for data in [try JSONEncoder.compact.encode(value), try escapingSlashes.encode(value), try pretty.encode(value), try value.encoded()] {
                let parsed = try JSONValue.parse(data)
                #expect(parsed == value, "round \(round): \(String(decoding: data, as: UTF8.self))")
                #expect(parsed == (try JSONDecoder().decode(JSONValue.self, from: data)), "round \(round)")
            }
        }
    }

    /// A random value that survives JSONEncoder → JSONDecoder unchanged: doubles are never
    /// integral below 2^64 (Foundation writes 2.0 as `2` and reads it back as an integer).
    private func randomValue(depth: Int, using generator: inout SplitMix64) -> JSONValue {
        let kind = Int.random(in: 0..<(depth > 0 ? 8 : 6), using: &generator)
        switch kind {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2:
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: return .int(Int.random(in: -1000...1000, using: &generator))
            case 1: return .int(Int.random(in: Int.min...Int.max, using: &generator))
            default: return .int([Int.min, Int.max, 0, -1, 1 << 53, -(1 << 53) - 1].randomElement(using: &generator)!)
            }
        case 3: return .double(randomDouble(using: &generator))
        case 4, 5: return .string(randomString(using: &generator))
        case 6:
            let count = Int.random(in: 0...6, using: &generator)
            return .array((0..<count).map { _ in randomValue(depth: depth - 1, using: &generator) })
        default:
            let count = Int.random(in: 0...6, using: &generator)
            var object: [String: JSONValue] = [:]
            for _ in 0..<count { object[randomString(using: &generator)] = randomValue(depth: depth - 1, using: &generator) }
            return .object(object)
        }
    }

    private func randomDouble(using generator: inout SplitMix64) -> Double {
        let sign: Double = Bool.random(using: &generator) ? 1 : -1
        switch Int.random(in: 0..<4, using: &generator) {
        case 0:
            let whole = Double(Int.random(in: 0...1_000_000, using: &generator))
            return sign * (whole + Double.random(in: 0.001..<0.999, using: &generator))
        case 1:
            return sign * Double(sign: .plus, exponent: Int.random(in: -1074 ... -1, using: &generator), significand: Double.random(in: 1..<2, using: &generator))
        case 2:
            return sign * Double(sign: .plus, exponent: Int.random(in: 64...1023, using: &generator), significand: Double.random(in: 1..<2, using: &generator))
        default:
            return sign * [0.1, 0.5, 1.5, 2.675, .pi, 1e-7, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e300].randomElement(using: &generator)!
        }
    }

    private func randomString(using generator: inout SplitMix64) -> String {
        let alphabet: [Character] = [
            "a", "b", "z", "A", "0", " ", "_", "-", "\"", "\\", "/", "\n", "\r", "\t", "\u{0}", "\u{1}", "\u{8}", "\u{C}", "\u{1F}", "\u{7F}",
            "é", "ß", "中", "文", "😀", "🎵", "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{FFFD}", "\u{10FFFF}", "\u{E000}",
        ]
        let count = Int.random(in: 0...12, using: &generator)
        return String((0..<count).map { _ in alphabet.randomElement(using: &generator)! })
    }
}

/// A small seeded generator, so a failing corpus can be reproduced.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
