import AsyncHTTPClient
import ChorusCore
import Foundation
import NIOCore
import NIOHTTP1

/// An error that the CLI reports on stderr before exiting non-zero: the server's own message
/// when it sent one.
struct ClientError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }

    /// From an error answer: `{"error":{"message",…}}` when the server sent one.
    init(status: Int, body: [UInt8]) {
        let message = (try? JSONValue.parse(body))?["error"]?["message"]?.stringValue
            ?? String(decoding: body.prefix(500), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        // Shown on a terminal: an error may quote upstream or user text.
        self.init("\(message.isEmpty ? "the server answered \(status)" : Terminal.sanitized(message)) (HTTP \(status))")
    }
}

/// The methods the commands use (NIO's own type stays inside this file).
enum Method: String, Sendable {
    case GET, POST, DELETE

    var nio: HTTPMethod {
        switch self {
        case .GET: .GET
        case .POST: .POST
        case .DELETE: .DELETE
        }
    }
}

/// A small client of Chorus's HTTP API (async-http-client).
struct ChorusClient: Sendable {
    let baseURL: String
    let apiKey: String?

    init(baseURL: String, apiKey: String?) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.apiKey = apiKey
    }

    private func request(_ method: Method, _ path: String, body: JSONValue?) throws -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method.nio
        if let apiKey { request.headers.add(name: "Authorization", value: "Bearer \(apiKey)") }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try body.encoded()))
        }
        return request
    }

    /// One client for the process (never shut down: the process ends with it). A server that is
    /// not there fails the request at once instead of being retried until its deadline.
    private static let http: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    private func execute(_ request: HTTPClientRequest, timeout: TimeAmount) async throws -> HTTPClientResponse {
        do {
            return try await Self.http.execute(request, timeout: timeout)
        } catch let error as HTTPClientError {
            throw ClientError("cannot reach Chorus at \(baseURL): \(error)")
        } catch let error as CancellationError {
            throw error
        } catch {
            throw ClientError("cannot reach Chorus at \(baseURL): \(error)")
        }
    }

    /// One request and its JSON answer; an error answer throws its message.
    func send(_ method: Method, _ path: String, body: JSONValue? = nil) async throws -> JSONValue {
        let response = try await execute(try request(method, path, body: body), timeout: .seconds(60))
        let bytes = Array(try await response.body.collect(upTo: 64 * 1024 * 1024).readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else { throw ClientError(status: Int(response.status.code), body: bytes) }
        guard !bytes.isEmpty else { return .null }
        do {
            return try JSONValue.parse(bytes)
        } catch {
            throw ClientError("the server's answer to \(method.rawValue) \(path) is not JSON")
        }
    }

    func get(_ path: String) async throws -> JSONValue { try await send(.GET, path) }

    /// Server-sent events of a streaming request, as they arrive. An error answer (before the
    /// stream) throws its message. Cancelling the caller's task closes the connection.
    func events(_ method: Method, _ path: String, body: JSONValue? = nil, headers: [(String, String)] = []) async throws -> AsyncThrowingStream<SSEEvent, any Error> {
        var request = try request(method, path, body: body)
        request.headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        // Long answers and long tasks: no overall deadline (Ctrl-C or cancel stops them).
        let response = try await execute(request, timeout: .hours(24))
        guard (200..<300).contains(Int(response.status.code)) else {
            let bytes = Array(try await response.body.collect(upTo: 1024 * 1024).readableBytesView)
            throw ClientError(status: Int(response.status.code), body: bytes)
        }
        let body = response.body
        return AsyncThrowingStream { continuation in
            let reader = Task {
                var parser = SSEParser()
                do {
                    for try await buffer in body {
                        for event in try parser.feed(buffer.readableBytesView) { continuation.yield(event) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }
}

/// Percent-encodes one path segment or query value.
func escaped(_ value: String) -> String {
    value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
}
