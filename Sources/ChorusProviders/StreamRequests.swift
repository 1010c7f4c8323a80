import AsyncHTTPClient
import ChorusCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The streamed request's parsed URL, made again only when the endpoint's base URL changes (a
/// local model restarted on another port). async-http-client parses and takes apart the URL of
/// every `HTTPClient.Request` made from a string, which showed in the profile when each request
/// made its own.
final class StreamRequests: Sendable {
    private let last = Mutex<(base: String, request: HTTPClient.Request)?>(nil)
    /// What follows the base URL: `/chat/completions`, or a Gemini model's `:streamGenerateContent`.
    private let path: String

    init(path: String = "/chat/completions") {
        self.path = path
    }

    /// A POST to `base` + the path, without headers or body.
    func request(base: String) throws -> HTTPClient.Request {
        if let last = last.withLock({ $0 }), last.base == base { return last.request }
        let url = base + path
        let request: HTTPClient.Request
        do {
            request = try HTTPClient.Request(url: url, method: .POST)
        } catch {
            throw ChorusError.upstreamError(message: "the upstream URL is not valid (\(url))", upstreamStatus: nil)
        }
        last.withLock { $0 = (base, request) }
        return request
    }
}
