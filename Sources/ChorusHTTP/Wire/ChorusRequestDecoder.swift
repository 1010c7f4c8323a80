import ChorusCore
import Foundation
public import Hummingbird
import NIOCore

/// Decodes a JSON request body into a wire type (`request.decode(as:context:)`), failing the way
/// every Chorus route fails: a body over `context.maxUploadSize` is 413 `payload_too_large`, and
/// malformed JSON or a field of the wrong shape is an OpenAI-shaped 400 naming the field.
///
/// The body is read by `JSONParser`, as chat bodies are: the same strict grammar (no trailing
/// commas; of a key given twice, the last value counts) and the same `invalid_json` messages on
/// every route. `JSONDecoder` then maps the parsed tree onto the type, and its `DecodingError`s
/// become `ChorusError.invalidRequest` (see `ChorusRequestDecoder.invalidRequest(_:)`).
public struct ChorusRequestDecoder: RequestDecoder {
    public init() {}

    public func decode<T: Decodable>(_ type: T.Type, from request: Request, context: some RequestContext) async throws -> T {
        let limit = context.maxUploadSize
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch {
            throw ChorusError.payloadTooLarge(limit: limit)
        }
        return try decode(type, from: body.readableBytesView)
    }

    func decode<T: Decodable>(_ type: T.Type, from body: some Collection<UInt8>) throws -> T {
        let tree: JSONValue = body.isEmpty && type is any EmptyBodyAllowed.Type ? .object([:]) : try JSONValue.parse(body)
        do {
            return try JSONDecoder().decode(type, from: try tree.encoded())
        } catch let error as DecodingError {
            throw Self.invalidRequest(error)
        }
    }

    /// The 400 for a body that is valid JSON but not the wire type: `param` is the path of the
    /// field (`scopes[2]`, `user.name`).
    ///
    /// - a missing field, or `null` where a value is required: `missing_required_parameter`
    /// - a value of the wrong JSON type: `invalid_type`
    /// - a value the type refuses (an unknown enum case, a number out of range): `invalid_value`
    static func invalidRequest(_ error: DecodingError) -> ChorusError {
        switch error {
        case .keyNotFound(let key, let context):
            return missingParameter(path(context.codingPath + [key]))
        case .valueNotFound(let type, let context):
            guard !context.codingPath.isEmpty else { return wrongBody(type) }
            return missingParameter(path(context.codingPath))
        case .typeMismatch(let type, let context):
            guard !context.codingPath.isEmpty else { return wrongBody(type) }
            let param = path(context.codingPath)
            return .invalidRequest(message: "'\(param)' must be \(describe(type)).", param: param, code: "invalid_type")
        case .dataCorrupted(let context):
            // The JSON itself was checked by `JSONParser`: JSONDecoder reports a number that does
            // not fit its field here, without a path.
            let param = context.codingPath.isEmpty ? nil : path(context.codingPath)
            return .invalidRequest(
                message: param.map { "'\($0)' has an invalid value." } ?? "A value in the request body is out of range for its field.",
                param: param, code: "invalid_value")
        @unknown default:
            return .invalidRequest(message: "The request body is not valid for this request.", param: nil, code: "invalid_value")
        }
    }

    static func missingParameter(_ param: String) -> ChorusError {
        .invalidRequest(message: "Missing required parameter: '\(param)'.", param: param, code: "missing_required_parameter")
    }

    private static func wrongBody(_ type: Any.Type) -> ChorusError {
        .invalidRequest(message: "The request body must be \(describe(type)).", param: nil, code: "invalid_type")
    }

    /// `scopes[2]`, `outer.inner`.
    static func path(_ keys: [any CodingKey]) -> String {
        keys.reduce(into: "") { path, key in
            if let index = key.intValue {
                path += "[\(index)]"
            } else {
                path += path.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is any BinaryInteger.Type: "an integer"
        case is any BinaryFloatingPoint.Type: "a number"
        case is [Any].Type: "an array"
        case is [String: Any].Type: "a JSON object"
        default: "of type \(type)"
        }
    }
}

/// A request whose body may be left out: an empty body decodes as `{}` (every field optional or
/// missing), not as malformed JSON.
protocol EmptyBodyAllowed: Decodable {}
