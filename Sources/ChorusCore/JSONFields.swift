/// Chosen fields of a JSON text, read without building the rest.
///
/// `JSONParser.parse` builds every value. For an upstream chunk, which arrives once per streamed
/// token, that is a dictionary for the chunk, an array and a dictionary per choice, one for the
/// delta, and strings for the id, the model and the other fields that are then thrown away.
/// `JSONFields.read` checks the whole text exactly as `JSONParser` does (the same errors), but only
/// notes where each value is; the caller turns into Swift values the few it needs.
///
///     try JSONFields.read(text) { fields, root in
///         try fields.members(of: root) { key, value in
///             if key == "model" { model = try fields.string(value) }
///         }
///     }
public struct JSONFields {
    public enum Kind: Sendable {
        case object, array, string, number, bool, null
    }

    /// A value of the text (already checked): what it is, and where.
    public struct Value {
        public let kind: Kind
        let offset: Int
    }

    /// An object's key, compared with a name without making a `String` of it (unless it has escapes).
    public enum Key {
        case raw(UnsafeBufferPointer<UInt8>)
        case decoded(String)

        public static func == (key: Key, name: StaticString) -> Bool {
            name.withUTF8Buffer { name in
                switch key {
                case .raw(let bytes): bytes.elementsEqual(name)
                case .decoded(let string): string.utf8.elementsEqual(name)
                }
            }
        }
    }

    private let bytes: UnsafeBufferPointer<UInt8>

    /// Checks `text` as one JSON document, as `JSONParser.parse` does (a malformed text throws
    /// the same `ChorusError`), then calls `body` with the fields and the root value. Values must
    /// not be used after `body` returns.
    public static func read<Result>(_ text: String, _ body: (JSONFields, Value) throws -> Result) throws -> Result {
        var text = text
        return try text.withUTF8 { bytes in
            var reader = JSONByteReader(bytes)
            let root: Value
            do throws(JSONSyntaxError) {
                root = try reader.checkDocument()
            } catch {
                throw JSONParser.invalid(error)
            }
            return try body(JSONFields(bytes: bytes), root)
        }
    }

    /// Calls `body` with each member of `object`, in order (a key that appears twice is seen twice).
    public func members(of object: Value, _ body: (Key, Value) throws -> Void) throws {
        precondition(object.kind == .object, "members(of:) needs an object")
        var reader = JSONByteReader(bytes, at: object.offset)
        var more = try reader.enterObject()
        while more {
            let key = try reader.readKey()
            try body(key, try reader.skipValue())
            more = try reader.nextMember()
        }
    }

    /// Calls `body` with each element of `array`, in order.
    public func elements(of array: Value, _ body: (Value) throws -> Void) throws {
        precondition(array.kind == .array, "elements(of:) needs an array")
        var reader = JSONByteReader(bytes, at: array.offset)
        var more = try reader.enterArray()
        while more {
            try body(try reader.skipValue())
            more = try reader.nextElement()
        }
    }

    /// A string value, unescaped.
    public func string(_ value: Value) throws -> String {
        precondition(value.kind == .string, "string(_:) needs a string")
        var reader = JSONByteReader(bytes, at: value.offset)
        return try reader.parseString()
    }

    /// Any value, built in full (as `JSONParser.parse` builds it).
    public func value(_ value: Value) throws -> JSONValue {
        var reader = JSONByteReader(bytes, at: value.offset)
        return try reader.parseValue()
    }
}
