/// The part of a JSON schema the fake reads to invent a value for it: the names and `type`s of
/// an object's `properties`. Used for tool-call arguments and for `json_schema` answers.
///
/// Decoding never fails: a schema that is not an object, or has no `properties`, has no
/// properties, and a property whose `type` is not a single string has no type.
struct ObjectSchema: Decodable, Sendable {
    struct Property: Sendable {
        let name: String
        let type: String?
    }

    /// In the order Python's `sort_keys=True` puts them: by Unicode scalar values.
    let properties: [Property]

    init(properties: [Property] = []) {
        self.properties = properties.sorted {
            $0.name.unicodeScalars.lexicographicallyPrecedes($1.name.unicodeScalars)
        }
    }

    init(from decoder: any Decoder) throws {
        guard let schema = try? decoder.container(keyedBy: AnyKey.self),
            let properties = try? schema.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("properties"))
        else {
            self.init()
            return
        }
        self.init(
            properties: properties.allKeys.map { key in
                let property = try? properties.nestedContainer(keyedBy: AnyKey.self, forKey: key)
                let type = property.flatMap { try? $0.decodeIfPresent(String.self, forKey: AnyKey("type")) }
                return Property(name: key.stringValue, type: type)
            }
        )
    }

    /// A sample object for this schema, as compact JSON exactly as Python's
    /// `json.dumps(value, separators=(",", ":"), sort_keys=True)` prints it. `index` makes
    /// samples differ: a `string` property is `"<name>_<index>"`, `integer` is `index`,
    /// `number` is `index + 0.5`, `boolean` is `true`, `array` is `[]`, `object` is `{}`,
    /// and any other type is `null`.
    func sampleJSON(index: Int) -> String {
        var json = "{"
        for (position, property) in self.properties.enumerated() {
            if position > 0 { json += "," }
            JSONText.appendPythonString(property.name, to: &json)
            json += ":"
            switch property.type {
            case "string": JSONText.appendPythonString("\(property.name)_\(index)", to: &json)
            case "integer": json += String(index)
            case "number": json += "\(index).5"
            case "boolean": json += "true"
            case "array": json += "[]"
            case "object": json += "{}"
            default: json += "null"
            }
        }
        return json + "}"
    }

    /// A coding key for any name.
    private struct AnyKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }

        init(_ name: String) { self.stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
