import ChorusCore
import ChorusStore
import HTTPTypes
import Hummingbird
import NIOCore

extension HTTPField.Name {
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let lastEventID = Self("Last-Event-ID")!
}

/// `Idempotency-Key` on submissions: the first answer is stored and replayed for the same key and
/// body; the same key with another body is 422; while the first is in flight, 409.
struct Idempotency: Sendable {
    let tasks: SQLTaskStore

    func run(
        _ request: Request, body: ByteBuffer, ownerID: String,
        _ produce: () async throws -> (status: HTTPResponse.Status, json: JSONValue)
    ) async throws -> Response {
        guard let key = request.headers[.idempotencyKey] else {
            let (status, json) = try await produce()
            return Self.response(status, ByteBuffer(bytes: try json.encoded()))
        }
        guard !key.isEmpty, key.count <= 255 else {
            throw ChorusError.invalidRequest(message: "The Idempotency-Key header must be 1 to 255 characters.", param: "Idempotency-Key", code: "invalid_value")
        }
        var fingerprint = Array("\(request.method.rawValue) \(request.uri.path)\n".utf8)
        fingerprint += request.headers[.contentType].map { Array($0.utf8) } ?? []
        fingerprint += body.readableBytesView
        switch try await tasks.beginIdempotent(ownerID: ownerID, key: key, requestHash: SHA256.hex(fingerprint), now: nowMilliseconds()) {
        case .mismatch:
            throw ChorusError.idempotencyMismatch
        case .inFlight:
            throw ChorusError.idempotencyInFlight
        case .replay(let status, let stored):
            var response = Self.response(.init(code: status), ByteBuffer(string: stored))
            response.headers[.idempotentReplayed] = "true"
            return response
        case .proceed:
            do {
                let (status, json) = try await produce()
                let text = String(decoding: try json.encoded(), as: UTF8.self)
                try await tasks.completeIdempotent(ownerID: ownerID, key: key, status: Int(status.code), body: text)
                return Self.response(status, ByteBuffer(string: text))
            } catch {
                try? await tasks.abandonIdempotent(ownerID: ownerID, key: key)
                throw error
            }
        }
    }

    /// A submission's answer, already JSON: written by `JSONWriter` (`JSONValue.encoded()`) on the
    /// measured async path, or the stored text of a replay.
    private static func response(_ status: HTTPResponse.Status, _ json: ByteBuffer) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: json))
    }
}
