public import NIOCore

/// One reply from Redis, in RESP2 or RESP3.
///
/// RESP2's null bulk string (`$-1`) and null array (`*-1`) and RESP3's null (`_`) all become
/// ``null``. Simple errors (`-`) and RESP3 bulk errors (`!`) both become ``error(_:)``.
/// RESP3 attributes (`|`) are skipped by the parser and never appear here. Bulk strings keep
/// their bytes (binary safe); ``string`` decodes them as UTF-8.
public enum RESPValue: Sendable {
    case simpleString(String)
    case error(String)
    case integer(Int)
    case bulkString(ByteBuffer)
    case null
    case array([RESPValue])
    case boolean(Bool)
    case double(Double)
    case bigNumber(String)
    case verbatimString(format: String, text: String)
    case map([(key: RESPValue, value: RESPValue)])
    case set([RESPValue])
    case push([RESPValue])
}

extension RESPValue {
    /// A bulk string holding the UTF-8 bytes of `string`.
    public static func bulkString(_ string: String) -> RESPValue {
        .bulkString(ByteBuffer(string: string))
    }

    /// The text of a simple string, bulk string (decoded as UTF-8), verbatim string or big number.
    public var string: String? {
        switch self {
        case .simpleString(let text), .bigNumber(let text): text
        case .bulkString(let bytes): String(buffer: bytes)
        case .verbatimString(_, let text): text
        default: nil
        }
    }

    /// The bytes of a bulk string, or the UTF-8 bytes of a simple or verbatim string.
    public var bytes: ByteBuffer? {
        switch self {
        case .bulkString(let bytes): bytes
        case .simpleString(let text), .verbatimString(_, let text): ByteBuffer(string: text)
        default: nil
        }
    }

    /// An integer, or a string that holds a decimal integer (Redis often answers numbers as bulk strings).
    public var int: Int? {
        switch self {
        case .integer(let value): value
        case .simpleString, .bulkString, .bigNumber: self.string.flatMap { Int($0) }
        case .double(let value): value.rounded() == value ? Int(exactly: value) : nil
        default: nil
        }
    }

    /// A double, an integer, or a string that holds a number.
    public var double: Double? {
        switch self {
        case .double(let value): value
        case .integer(let value): Double(value)
        case .simpleString, .bulkString, .bigNumber: self.string.flatMap { Double($0) }
        default: nil
        }
    }

    /// A RESP3 boolean, or the integers 0 and 1 that RESP2 uses instead.
    public var bool: Bool? {
        switch self {
        case .boolean(let value): value
        case .integer(0): false
        case .integer(1): true
        default: nil
        }
    }

    /// The elements of an array, set or push message.
    public var array: [RESPValue]? {
        switch self {
        case .array(let elements), .set(let elements), .push(let elements): elements
        default: nil
        }
    }

    /// The pairs of a RESP3 map, or of a RESP2 flat array `[key, value, key, value, ...]`.
    public var map: [(key: RESPValue, value: RESPValue)]? {
        switch self {
        case .map(let pairs):
            return pairs
        case .array(let elements) where elements.count % 2 == 0:
            return stride(from: 0, to: elements.count, by: 2).map { (key: elements[$0], value: elements[$0 + 1]) }
        default:
            return nil
        }
    }

    /// ``map`` keyed by the keys' text; pairs whose key is not a string are left out, a repeated key keeps its last value.
    public var dictionary: [String: RESPValue]? {
        guard let pairs = self.map else { return nil }
        var result: [String: RESPValue] = [:]
        result.reserveCapacity(pairs.count)
        for (key, value) in pairs {
            if let key = key.string { result[key] = value }
        }
        return result
    }

    /// Whether this is a null reply (RESP2 null bulk string or null array, or RESP3 null).
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The message of an error reply, such as `"ERR unknown command 'FOO'"`.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// A short name of the kind of value, for error messages.
    var kindDescription: String {
        switch self {
        case .simpleString: "simple string"
        case .error: "error"
        case .integer: "integer"
        case .bulkString: "bulk string"
        case .null: "null"
        case .array: "array"
        case .boolean: "boolean"
        case .double: "double"
        case .bigNumber: "big number"
        case .verbatimString: "verbatim string"
        case .map: "map"
        case .set: "set"
        case .push: "push"
        }
    }
}

extension RESPValue: Equatable {
    public static func == (lhs: RESPValue, rhs: RESPValue) -> Bool {
        switch (lhs, rhs) {
        case (.simpleString(let a), .simpleString(let b)): a == b
        case (.error(let a), .error(let b)): a == b
        case (.integer(let a), .integer(let b)): a == b
        case (.bulkString(let a), .bulkString(let b)): a == b
        case (.null, .null): true
        case (.array(let a), .array(let b)): a == b
        case (.boolean(let a), .boolean(let b)): a == b
        case (.double(let a), .double(let b)): a == b || (a.isNaN && b.isNaN)
        case (.bigNumber(let a), .bigNumber(let b)): a == b
        case (.verbatimString(let f1, let t1), .verbatimString(let f2, let t2)): f1 == f2 && t1 == t2
        case (.map(let a), .map(let b)): a.elementsEqual(b) { $0.key == $1.key && $0.value == $1.value }
        case (.set(let a), .set(let b)): a == b
        case (.push(let a), .push(let b)): a == b
        default: false
        }
    }
}

extension RESPValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .simpleString(let text): "+\(text)"
        case .error(let message): "-\(message)"
        case .integer(let value): ":\(value)"
        case .bulkString(let bytes): String(reflecting: String(buffer: bytes))
        case .null: "null"
        case .array(let elements): "[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .boolean(let value): value ? "#t" : "#f"
        case .double(let value): ",\(value)"
        case .bigNumber(let text): "(\(text)"
        case .verbatimString(let format, let text): "=\(format):\(String(reflecting: text))"
        case .map(let pairs): "{" + pairs.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}"
        case .set(let elements): "~[" + elements.map(\.description).joined(separator: ", ") + "]"
        case .push(let elements): ">[" + elements.map(\.description).joined(separator: ", ") + "]"
        }
    }
}

extension RESPValue: ExpressibleByStringLiteral {
    /// A string literal is a bulk string, which is how Redis answers most string data.
    public init(stringLiteral value: String) {
        self = .bulkString(ByteBuffer(string: value))
    }
}

extension RESPValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int) {
        self = .integer(value)
    }
}

extension RESPValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: RESPValue...) {
        self = .array(elements)
    }
}
