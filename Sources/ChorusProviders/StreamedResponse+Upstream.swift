import ChorusCore
import NIOCore
import NIOHTTP1

extension StreamedResponse {
    /// The next part; a transport failure becomes Chorus's error (a timeout, a lost connection).
    func nextPart(timeouts: ModelTimeouts) async throws -> Part? {
        do {
            return try await next()
        } catch {
            throw OpenAICompatibleProvider.transportError(error, timeouts: timeouts)
        }
    }

    /// Reads the head and returns when it is 200; otherwise throws what `failure` makes of the
    /// error status and the first 64 KB of its body.
    func requireOK(timeouts: ModelTimeouts, failure: (HTTPResponseHead, ByteBuffer) -> any Error) async throws {
        guard case .head(let head)? = try await nextPart(timeouts: timeouts) else {
            throw ChorusError.upstreamError(message: "the upstream closed the connection without a response", upstreamStatus: nil)
        }
        guard head.status == .ok else {
            var bytes = ByteBuffer()
            while bytes.readableBytes < 64 * 1024, case .body(var part)? = try? await next() {
                bytes.writeBuffer(&part)
            }
            throw failure(head, bytes)
        }
    }
}
