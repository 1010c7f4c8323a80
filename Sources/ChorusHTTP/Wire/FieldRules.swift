import ChorusCore

/// What the fields of request bodies may hold, for the request types' `init(from:)`: the limits,
/// as OpenAI-shaped 400s naming the field, in the words these routes have always used. What is
/// read with `JSONDecoder` alone (a flag of another type, a body that is no object) fails there
/// and is mapped by `ChorusRequestDecoder.invalidRequest`.
extension KeyedDecodingContainer {
    /// A string of at most `maxLength` characters; nil when absent or null. Another type and a
    /// longer string are the same `invalid_type`, which says both.
    func string(_ key: Key, maxLength: Int = 1024, orNull: Bool = false) throws -> String? {
        let param = path(key)
        let invalid = ChorusError.invalidRequest(
            message: "'\(param)' must be a string of at most \(maxLength) characters\(orNull ? " or null" : "").", param: param, code: "invalid_type")
        let value: String?
        do {
            value = try decodeIfPresent(String.self, forKey: key)
        } catch DecodingError.typeMismatch {
            throw invalid
        }
        guard (value?.count ?? 0) <= maxLength else { throw invalid }
        return value
    }

    /// A non-empty string of at most `maxLength` characters.
    func requiredString(_ key: Key, maxLength: Int = 1024) throws -> String {
        guard let value = try string(key, maxLength: maxLength), !value.isEmpty else {
            throw ChorusRequestDecoder.missingParameter(path(key))
        }
        return value
    }

    /// An integer in `range` (`2.0` is one); nil when absent or null. Anything else, a string
    /// included, is `invalid_value`.
    func integer(_ key: Key, in range: ClosedRange<Int>) throws -> Int? {
        guard let value = try decodeIfPresent(JSONValue.self, forKey: key) else { return nil }
        guard let number = value.intValue, range.contains(number) else {
            let param = path(key)
            throw ChorusError.invalidRequest(
                message: "'\(param)' must be an integer between \(range.lowerBound) and \(range.upperBound).", param: param, code: "invalid_value")
        }
        return number
    }

    /// A list of permission names; nil when absent or null. Errors name the list (`scopes`), not
    /// the item.
    func permissions(_ key: Key) throws -> Set<Permission>? {
        guard let value = try decodeIfPresent(JSONValue.self, forKey: key) else { return nil }
        let param = path(key)
        guard case .array(let items) = value, items.allSatisfy({ $0.stringValue != nil }) else {
            throw ChorusError.invalidRequest(message: "'\(param)' must be a list of permission names.", param: param, code: "invalid_type")
        }
        switch Permission.parse(items.compactMap(\.stringValue)) {
        case .success(let permissions):
            return permissions
        case .failure(let unknown):
            throw ChorusError.invalidRequest(
                message: "Unknown permission '\(unknown.name)'; expected any of \(Permission.allCases.map(\.rawValue).joined(separator: ", ")).",
                param: param, code: "invalid_value")
        }
    }

    /// A list of permission names that must be given.
    func requiredPermissions(_ key: Key) throws -> Set<Permission> {
        guard let permissions = try permissions(key) else { throw ChorusRequestDecoder.missingParameter(path(key)) }
        return permissions
    }

    private func path(_ key: Key) -> String {
        ChorusRequestDecoder.path(codingPath + [key])
    }
}
