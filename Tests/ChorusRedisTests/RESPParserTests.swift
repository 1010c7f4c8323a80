import ChorusRedis
import NIOCore
import Testing

@Suite("RESP parsing and encoding")
struct RESPParserTests {
    /// Several replies back to back: nested RESP2 and RESP3 aggregates, attributes (top level and
    /// nested), every scalar type, binary bulk strings holding CRLF, empty and null values.
    static let stream: [(bytes: String, expected: RESPValue)] = [
        ("*3\r\n$3\r\nfoo\r\n*2\r\n:1\r\n$-1\r\n*0\r\n", [.bulkString("foo"), [1, .null], .array([])]),
        ("*-1\r\n", .null),
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR unknown command 'FOO'\r\n", .error("ERR unknown command 'FOO'")),
        (":-42\r\n", -42),
        ("$0\r\n\r\n", .bulkString("")),
        ("$6\r\na\r\nb\r\n\r\n", .bulkString("a\r\nb\r\n")),
        (
            "%2\r\n+first\r\n#t\r\n$6\r\nsecond\r\n~3\r\n,3.5\r\n(-12345678901234567890\r\n#f\r\n",
            .map([
                (key: .simpleString("first"), value: .boolean(true)),
                (key: "second", value: .set([.double(3.5), .bigNumber("-12345678901234567890"), .boolean(false)])),
            ])
        ),
        ("|1\r\n+key-popularity\r\n*2\r\n$1\r\na\r\n,0.1923\r\n*2\r\n:2039123\r\n:9543892\r\n", [2_039_123, 9_543_892]),
        ("*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nx\r\n_\r\n", ["x", .null]),
        ("|0\r\n:7\r\n", 7),
        ("!21\r\nSYNTAX invalid syntax\r\n", .error("SYNTAX invalid syntax")),
        ("=15\r\ntxt:Some string\r\n", .verbatimString(format: "txt", text: "Some string")),
        (">3\r\n+message\r\n+chan\r\n$3\r\nhi!\r\n", .push([.simpleString("message"), .simpleString("chan"), "hi!"])),
        (",inf\r\n", .double(.infinity)),
        (",-1.5e3\r\n", .double(-1500)),
        ("%0\r\n", .map([])),
        ("*1\r\n*1\r\n*1\r\n%1\r\n$1\r\nk\r\n~0\r\n", [[[.map([(key: "k", value: .set([]))])]]]),
        ("_\r\n", .null),
    ]

    static var allBytes: [UInt8] { Array(stream.map(\.bytes).joined().utf8) }
    static var allExpected: [RESPValue] { stream.map(\.expected) }

    /// Parses `chunks` fed one after another, as reads from a socket would arrive.
    static func parse(chunks: [ArraySlice<UInt8>]) throws -> [RESPValue] {
        var parser = RESPParser()
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let value = try parser.next(from: &buffer) {
                values.append(value)
            }
        }
        #expect(buffer.readableBytes == 0)
        #expect(!parser.isInsideReply)
        return values
    }

    @Test("whole input parses to the expected replies")
    func wholeInput() throws {
        let bytes = Self.allBytes
        #expect(try Self.parse(chunks: [bytes[...]]) == Self.allExpected)
    }

    @Test("a split at every byte gives the same replies")
    func everySplitPoint() throws {
        let bytes = Self.allBytes
        let expected = Self.allExpected
        for split in 0...bytes.count {
            let values = try Self.parse(chunks: [bytes[..<split], bytes[split...]])
            #expect(values == expected, "split at byte \(split)")
        }
    }

    @Test("every pair of split points gives the same replies")
    func everyPairOfSplitPoints() throws {
        let bytes = Self.allBytes
        let expected = Self.allExpected
        // Each reply on its own, cut at every two points: covers a token cut in two places.
        for (reply, value) in Self.stream {
            let replyBytes = Array(reply.utf8)
            for first in 0...replyBytes.count {
                for second in first...replyBytes.count {
                    let values = try Self.parse(chunks: [replyBytes[..<first], replyBytes[first..<second], replyBytes[second...]])
                    #expect(values == [value], "\(String(reflecting: reply)) split at \(first) and \(second)")
                }
            }
        }
        // And the whole stream one byte at a time.
        #expect(try Self.parse(chunks: bytes.indices.map { bytes[$0...$0] }) == expected)
    }

    @Test("binary bulk strings keep every byte")
    func binaryBulkString() throws {
        let payload = (0...255).map { UInt8($0) } + [13, 10, 13]
        var buffer = ByteBuffer(string: "$\(payload.count)\r\n")
        buffer.writeBytes(payload)
        buffer.writeString("\r\n")
        var parser = RESPParser()
        let value = try parser.next(from: &buffer)
        #expect(value == .bulkString(ByteBuffer(bytes: payload)))
    }

    @Test(
        "garbage is rejected with a clear protocol error",
        arguments: [
            ("?foo\r\n", "unexpected RESP type byte 0x3F ('?')"),
            ("$abc\r\n", "invalid length"),
            (":12a\r\n", "invalid integer"),
            (":\r\n", "empty integer"),
            ("$3\r\nfoobar\r\n", "not followed by CRLF"),
            ("#x\r\n", "boolean"),
            ("+OK\rX", "carriage return not followed by a line feed"),
            ("$-2\r\n", "negative length"),
            ("%-1\r\n", "negative count"),
            ("=2\r\nab\r\n", "verbatim string"),
            (":99999999999999999999\r\n", "64 bits"),
            (",abc\r\n", "invalid double"),
            ("(12x\r\n", "invalid big number"),
            ("\r\n", "empty line"),
            ("_x\r\n", "null"),
        ]
    )
    func garbage(input: String, expectedMessage: String) throws {
        var parser = RESPParser()
        var buffer = ByteBuffer(string: input)
        do {
            let value = try parser.next(from: &buffer)
            Issue.record("expected an error for \(String(reflecting: input)), got \(String(describing: value))")
        } catch {
            guard case .protocolError(let message) = error else {
                Issue.record("expected a protocol error, got \(error)")
                return
            }
            #expect(message.contains(expectedMessage), "\(message)")
        }
    }

    @Test("limits stop unbounded lines, lengths and nesting")
    func limits() throws {
        var limits = RESPParser.Limits()
        limits.maxLineLength = 16
        limits.maxBulkLength = 10
        limits.maxDepth = 3
        limits.maxAggregateCount = 5

        for (input, expectedMessage) in [
            ("+" + String(repeating: "a", count: 40), "no CRLF within 16 bytes"),
            ("$11\r\n", "exceeds the limit"),
            ("*6\r\n", "exceeds the limit"),
            ("*1\r\n*1\r\n*1\r\n*1\r\n", "nested deeper"),
        ] {
            var parser = RESPParser(limits: limits)
            var buffer = ByteBuffer(string: input)
            #expect(throws: RedisError.self) { try parser.next(from: &buffer) }
            buffer = ByteBuffer(string: input)
            parser = RESPParser(limits: limits)
            do {
                _ = try parser.next(from: &buffer)
            } catch {
                #expect("\(error)".contains(expectedMessage), "\(error)")
            }
        }
    }

    @Test("an incomplete reply consumes nothing it cannot finish")
    func incompleteReply() throws {
        var parser = RESPParser()
        var buffer = ByteBuffer(string: "$5\r\nhel")
        #expect(try parser.next(from: &buffer) == nil)
        #expect(buffer.readableBytes == 7)
        buffer.writeString("lo\r\n+next\r\n")
        #expect(try parser.next(from: &buffer) == "hello")
        #expect(try parser.next(from: &buffer) == .simpleString("next"))
        #expect(try parser.next(from: &buffer) == nil)
    }

    @Test("commands are encoded as arrays of bulk strings, binary safe")
    func encoding() {
        var buffer = ByteBuffer()
        let command: RedisCommand = ["SET", "key", .bytes(ByteBuffer(bytes: [0, 13, 10, 255])), 42]
        RESPEncoder.encode(command, into: &buffer)
        var expected = ByteBuffer(string: "*4\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n")
        expected.writeBytes([0, 13, 10, 255])
        expected.writeString("\r\n$2\r\n42\r\n")
        #expect(buffer == expected)

        var long = ByteBuffer()
        RESPEncoder.encode(RedisCommand(["ECHO", String(repeating: "é", count: 600)]), into: &long)
        #expect(long.readString(length: 21) == "*2\r\n$4\r\nECHO\r\n$1200\r\n")
    }

    @Test("accessors read both RESP2 and RESP3 shapes")
    func accessors() {
        let resp2: RESPValue = ["name", "g1", "pending", 3]
        let resp3 = RESPValue.map([(key: "name", value: "g1"), (key: "pending", value: 3)])
        for value in [resp2, resp3] {
            let fields = value.dictionary
            #expect(fields?["name"]?.string == "g1")
            #expect(fields?["pending"]?.int == 3)
        }
        #expect(RESPValue.bulkString("17").int == 17)
        #expect(RESPValue.integer(1).bool == true)
        #expect(RESPValue.boolean(false).bool == false)
        #expect(RESPValue.null.isNull)
        #expect(RESPValue.error("ERR x").errorMessage == "ERR x")
        #expect(RESPValue.set(["a"]).array == ["a"])
        #expect(RESPValue.double(2.5).double == 2.5)
        #expect(RESPValue.verbatimString(format: "txt", text: "hi").string == "hi")
    }
}
