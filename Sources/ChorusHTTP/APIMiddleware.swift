import ChorusCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let conversationID = Self("X-Conversation-Id")!
}

/// Outermost middleware: assigns the request id (or keeps a sane one the client sent), puts it on
/// every response, and turns every error into an OpenAI-shaped body with the right status —
/// the one place where errors become HTTP.
struct APIMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let incoming = request.headers[.requestID], incoming.count <= 128, incoming.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) {
            context.requestID = incoming
        }
        context.logger[metadataKey: "request_id"] = .string(context.requestID)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            let chorusError = Self.chorusError(for: error)
            if case .internalError(let detail) = chorusError {
                context.logger.error("request failed", metadata: ["error": "\(detail)", "path": "\(request.uri.path)"])
            }
            response = Self.errorResponse(chorusError)
        }
        response.headers[.requestID] = context.requestID
        return response
    }

    static func chorusError(for error: any Error) -> ChorusError {
        switch error {
        case let error as ChorusError:
            return error
        case let error as any HTTPResponseError:
            switch error.status.code {
            case 404: return .invalidRequest(message: "Unknown request URL. Please check the URL and method.", param: nil, code: "unknown_url")
            case 405: return .invalidRequest(message: "Method not allowed for this URL.", param: nil, code: "method_not_allowed")
            case 413: return .payloadTooLarge(limit: 0)
            default: return .invalidRequest(message: error.status.reasonPhrase, param: nil, code: nil)
            }
        default:
            return .internalError("\(error)")
        }
    }

    static func errorResponse(_ error: ChorusError) -> Response {
        var status = HTTPResponse.Status(code: error.httpStatus)
        if case .invalidRequest(_, _, "unknown_url") = error { status = .notFound }
        if case .invalidRequest(_, _, "method_not_allowed") = error { status = .methodNotAllowed }
        var body = error.body
        if case .payloadTooLarge(0) = error { body.error.message = "The request body is larger than the server accepts." }
        let data = (try? JSONEncoder().encode(body)) ?? Data()
        return Response(
            status: status,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
