import Foundation
import HTTPTypes
public import Hummingbird
import NIOCore

/// Encodes a handler's `ResponseEncodable` wire type as the body of a 200: compact JSON with `/`
/// unescaped and keys sorted (as `JSONWriter` writes the hand-built bodies of the hot paths),
/// `Content-Type: application/json`.
public struct ChorusResponseEncoder: ResponseEncoder {
    public init() {}

    public func encode(_ value: some Encodable, from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}

extension ResponseEncodable {
    /// This object as a response no cache may keep (accounts, keys, sessions), with `status`.
    func uncached(_ status: HTTPResponse.Status = .ok) -> EditedResponse<Self> {
        EditedResponse(status: status, headers: [.cacheControl: "no-store"], response: self)
    }

    /// This object as a response with another status than 200.
    func withStatus(_ status: HTTPResponse.Status) -> EditedResponse<Self> {
        EditedResponse(status: status, response: self)
    }
}

/// Encodes `nil` as `null` instead of leaving the key out: the objects Chorus returns keep every
/// key (`"name": null`), as OpenAI's do.
@propertyWrapper
struct Nullable<Value: Encodable & Sendable>: Encodable, Sendable {
    var wrappedValue: Value?

    init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let wrappedValue {
            try container.encode(wrappedValue)
        } else {
            try container.encodeNil()
        }
    }
}

/// `{"object": "list", "data": [...]}`, with `has_more` where the list is paged.
struct ListObject<Item: Encodable & Sendable>: ResponseEncodable, Sendable {
    let object = "list"
    var data: [Item]
    /// Left out of lists that are not paged.
    var hasMore: Bool?

    init(_ data: [Item], hasMore: Bool? = nil) {
        self.data = data
        self.hasMore = hasMore
    }

    enum CodingKeys: String, CodingKey {
        case object, data, hasMore = "has_more"
    }
}
