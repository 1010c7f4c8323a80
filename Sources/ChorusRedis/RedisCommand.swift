public import NIOCore

/// One argument of a command: text (sent as its UTF-8 bytes) or raw bytes.
public enum RedisArgument: Sendable, Hashable {
    case string(String)
    case bytes(ByteBuffer)

    /// An integer, sent in decimal.
    public static func int(_ value: Int) -> RedisArgument { .string(String(value)) }
}

extension RedisArgument: ExpressibleByStringLiteral, ExpressibleByStringInterpolation {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension RedisArgument: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) { self = .int(value) }
}

/// A command: its name followed by its arguments, sent as a RESP array of bulk strings (binary safe).
public struct RedisCommand: Sendable, Hashable {
    public var arguments: [RedisArgument]

    public init(_ arguments: [RedisArgument]) { self.arguments = arguments }

    public init(_ arguments: [String]) { self.arguments = arguments.map(RedisArgument.string) }

    /// The command name (the first argument), for logs and error messages.
    public var name: String {
        switch self.arguments.first {
        case .string(let name): name.uppercased()
        case .bytes(let bytes): String(buffer: bytes).uppercased()
        case nil: ""
        }
    }
}

extension RedisCommand: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: RedisArgument...) { self.arguments = elements }
}

/// Writes commands in RESP: `*<n>\r\n` then `$<len>\r\n<bytes>\r\n` for each argument.
public enum RESPEncoder {
    public static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(command.arguments.count, into: &buffer)
        buffer.writeCRLF()
        for argument in command.arguments {
            switch argument {
            case .string(let text):
                buffer.writeInteger(UInt8(ascii: "$"))
                writeDecimal(text.utf8.count, into: &buffer)
                buffer.writeCRLF()
                buffer.writeString(text)
            case .bytes(let bytes):
                buffer.writeInteger(UInt8(ascii: "$"))
                writeDecimal(bytes.readableBytes, into: &buffer)
                buffer.writeCRLF()
                buffer.writeImmutableBuffer(bytes)
            }
            buffer.writeCRLF()
        }
    }

    /// Writes a non-negative integer in ASCII decimal without building a `String`.
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        precondition(value >= 0)
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { storage in
            var remaining = value
            var index = storage.count
            while remaining > 0 {
                index -= 1
                storage[index] = UInt8(ascii: "0") &+ UInt8(remaining % 10)
                remaining /= 10
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: storage[index...]))
        }
    }
}

extension ByteBuffer {
    mutating func writeCRLF() {
        self.writeInteger(UInt16(0x0D0A), endianness: .big)
    }
}
