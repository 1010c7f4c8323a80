import ChorusCore
import Hummingbird
import NIOCore

/// A JSON object request body with typed reads that fail as OpenAI-shaped 400s naming the field.
struct JSONBody {
    let fields: [String: JSONValue]

    static func read(_ request: Request, limit: Int) async throws -> JSONBody {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: limit)
        } catch {
            throw ChorusError.payloadTooLarge(limit: limit)
        }
        if buffer.readableBytes == 0 { return JSONBody(fields: [:]) }
        guard case .object(let fields) = try JSONValue.parse(buffer.readableBytesView) else {
            throw ChorusError.invalidRequest(message: "The request body must be a JSON object.", param: nil, code: "invalid_type")
        }
        return JSONBody(fields: fields)
    }

    func has(_ name: String) -> Bool { fields[name] != nil }

    func string(_ name: String, maxLength: Int = 1024) throws -> String? {
        switch fields[name] {
        case nil, .null?: return nil
        case .string(let value)? where value.count <= maxLength: return value
        default:
            throw ChorusError.invalidRequest(message: "'\(name)' must be a string of at most \(maxLength) characters.", param: name, code: "invalid_type")
        }
    }

    func requiredString(_ name: String, maxLength: Int = 1024) throws -> String {
        guard let value = try string(name, maxLength: maxLength), !value.isEmpty else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: '\(name)'.", param: name, code: "missing_required_parameter")
        }
        return value
    }

    func int(_ name: String, range: ClosedRange<Int>) throws -> Int? {
        switch fields[name] {
        case nil, .null?: return nil
        case let value?:
            guard let number = value.intValue, range.contains(number) else {
                throw ChorusError.invalidRequest(message: "'\(name)' must be an integer between \(range.lowerBound) and \(range.upperBound).", param: name, code: "invalid_value")
            }
            return number
        }
    }

    func bool(_ name: String) throws -> Bool? {
        switch fields[name] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        default: throw ChorusError.invalidRequest(message: "'\(name)' must be true or false.", param: name, code: "invalid_type")
        }
    }

    func permissions(_ name: String) throws -> Set<Permission>? {
        switch fields[name] {
        case nil, .null?: return nil
        case .array(let items)?:
            let names = try items.map { item -> String in
                guard let text = item.stringValue else {
                    throw ChorusError.invalidRequest(message: "'\(name)' must be a list of permission names.", param: name, code: "invalid_type")
                }
                return text
            }
            switch Permission.parse(names) {
            case .success(let permissions): return permissions
            case .failure(let unknown):
                throw ChorusError.invalidRequest(
                    message: "Unknown permission '\(unknown.name)'; expected any of \(Permission.allCases.map(\.rawValue).joined(separator: ", ")).",
                    param: name, code: "invalid_value")
            }
        default:
            throw ChorusError.invalidRequest(message: "'\(name)' must be a list of permission names.", param: name, code: "invalid_type")
        }
    }
}

extension Response {
    /// A JSON response that is never cached (accounts, keys, sessions).
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: try value.encoded())))
    }
}

/// How account objects look on the wire (timestamps in seconds).
enum AccountJSON {
    static func seconds(_ milliseconds: Int64?) -> JSONValue {
        milliseconds.map { .int(Int($0 / 1000)) } ?? .null
    }

    static func user(_ user: UserRecord) -> JSONValue {
        .object([
            "id": .string(user.id), "object": .string("user"), "email": .string(user.email),
            "name": user.name.map(JSONValue.string) ?? .null, "role": .string(user.role), "disabled": .bool(user.disabled),
            "token_budget": user.tokenBudget.map { .int(Int($0)) } ?? .null, "tokens_used": .int(Int(user.tokensUsed)),
            "created_at": seconds(user.createdAt),
        ])
    }

    static func apiKey(_ key: APIKeyRecord, secret: String? = nil) -> JSONValue {
        var object: [String: JSONValue] = [
            "id": .string(key.id), "object": .string("api_key"), "user_id": .string(key.userID), "name": .string(key.name),
            "prefix": .string(key.prefix), "scopes": key.scopes.map { .array($0.sorted().map { .string($0.rawValue) }) } ?? .null,
            "created_at": seconds(key.createdAt), "expires_at": seconds(key.expiresAt), "last_used_at": seconds(key.lastUsedAt),
            "revoked_at": seconds(key.revokedAt), "token_budget": key.tokenBudget.map { .int(Int($0)) } ?? .null,
            "tokens_used": .int(Int(key.tokensUsed)),
        ]
        if let secret { object["key"] = .string(secret) }
        return .object(object)
    }

    static func role(_ role: RoleRecord) -> JSONValue {
        .object([
            "object": .string("role"), "name": .string(role.name),
            "permissions": .array(role.permissions.sorted().map { .string($0.rawValue) }), "builtin": .bool(role.builtin),
        ])
    }

    static func list(_ items: [JSONValue], hasMore: Bool? = nil) -> JSONValue {
        var object: [String: JSONValue] = ["object": .string("list"), "data": .array(items)]
        if let hasMore { object["has_more"] = .bool(hasMore) }
        return .object(object)
    }
}
