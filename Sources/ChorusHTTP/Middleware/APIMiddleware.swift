import ChorusCore
import ChorusRuntime
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOWebSocket
import Tracing

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let conversationID = Self("X-Conversation-Id")!
    /// Which model answered (a fallback may) and on which deployment; whether the cache did.
    static let chorusModel = Self("X-Chorus-Model")!
    static let chorusDeployment = Self("X-Chorus-Deployment")!
    static let chorusCache = Self("X-Chorus-Cache")!
}

/// Outermost middleware: assigns the request id (or keeps a sane one the client sent), puts it and
/// the security headers on every response, answers CORS for the allowed origins, and turns every
/// error into an OpenAI-shaped body with the right status — the one place where errors become HTTP.
struct APIMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext

    /// Browser origins allowed to call the API.
    var corsOrigins: Set<String> = []

    static let securityHeaders: [(HTTPField.Name, String)] = [
        (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
        (HTTPField.Name("X-Frame-Options")!, "DENY"),
        (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        (HTTPField.Name("Content-Security-Policy")!, "default-src 'none'; frame-ancestors 'none'"),
    ]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let origin = request.headers[.origin].flatMap { corsOrigins.contains($0) ? $0 : nil }
        var response: Response
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil, request.headers[.origin] != nil {
            response = preflight(request, allowedOrigin: origin)
        } else {
            var failure: ChorusError?
            response = try await respond(request, context: context, next: next, failure: &failure)
            if Self.isWebSocketUpgrade(request), !(200..<300).contains(response.status.code) {
                response = try await Self.refuseWebSocket(status: Int(response.status.code), code: failure?.code, request: request, context: context)
            }
        }
        for (name, value) in Self.securityHeaders where response.headers[name] == nil {
            response.headers[name] = value
        }
        if let origin, request.method != .options {
            response.headers[.accessControlAllowOrigin] = origin
            response.headers[.accessControlAllowCredentials] = "true"
            response.headers[.accessControlExposeHeaders] = "X-Request-Id, X-Conversation-Id, X-Chorus-Model, X-Chorus-Deployment, X-Chorus-Cache, Retry-After"
            response.headers.append(HTTPField(name: .vary, value: "Origin"))
        }
        return response
    }

    static func isWebSocketUpgrade(_ request: Request) -> Bool {
        request.method == .get && request.headers[.upgrade]?.lowercased() == "websocket"
    }

    /// A refused WebSocket upgrade. The upgrade path can only answer a refusal with an empty 400
    /// (and browsers never show a refused handshake's status anyway), so the handshake is accepted
    /// and the socket closed at once with code 4000 + the HTTP status (4401, 4403, 4404, 4429…)
    /// and the error code as the reason.
    // Not inlined into `handle` (see `AuthMiddleware.admit`).
    @inline(never)
    static func refuseWebSocket(status: Int, code: String?, request: Request, context: Context) async throws -> Response {
        let reason = code.map { "{\"error\":{\"status\":\(status),\"code\":\"\(String($0.prefix(60)))\"}}" } ?? "{\"error\":{\"status\":\(status)}}"
        let closeCode = WebSocketErrorCode(codeNumber: 4000 + min(status, 999))
        let closing = WebSocketUpgradeMiddleware<Context>(onUpgrade: { _, outbound, _ in
            try await outbound.close(closeCode, reason: reason)
        })
        return try await closing.handle(request, context: context) { _, _ in Response(status: .ok) }
    }

    /// A CORS preflight: allowed origins get the methods and the headers they ask for; others a 403.
    private func preflight(_ request: Request, allowedOrigin: String?) -> Response {
        guard let origin = allowedOrigin else {
            var response = Self.errorResponse(.forbidden(message: "This origin is not allowed to call the API (http.cors_origins).", code: "cors_origin_not_allowed"))
            response.headers.append(HTTPField(name: .vary, value: "Origin"))
            return response
        }
        var headers: HTTPFields = [
            .accessControlAllowOrigin: origin,
            .accessControlAllowCredentials: "true",
            .accessControlAllowMethods: "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            .accessControlMaxAge: "600",
            .vary: "Origin",
        ]
        let asked = request.headers[.accessControlRequestHeaders] ?? ""
        headers[.accessControlAllowHeaders] = asked.isEmpty ? "Authorization, Content-Type, Idempotency-Key, X-CSRF-Token, X-Request-Id, Last-Event-ID" : String(asked.prefix(2048))
        return Response(status: .noContent, headers: headers)
    }

    private func respond(_ request: Request, context: Context, next: (Request, Context) async throws -> Response, failure: inout ChorusError?) async throws -> Response {
        var context = context
        if let incoming = request.headers[.requestID], incoming.count <= 128, incoming.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) {
            context.requestID = incoming
        }
        context.logger[metadataKey: "request_id"] = .string(context.requestID)
        // The request's span (when tracing): its request id, and an error status for a 5xx answer
        // (made here or by a controller, never thrown as far as the tracing middleware).
        let span = ServiceContext.current.flatMap { InstrumentationSystem.tracer.activeSpan(identifiedBy: $0) }
        span?.attributes["chorus.request_id"] = context.requestID
        var response: Response
        do {
            // In the task-local context too: lines logged on this request's behalf by shared
            // loggers (the engine's, the stores') carry it as well.
            let handled = context
            response = try await LogContext.withRequestID(context.requestID) { try await next(request, handled) }
        } catch {
            let chorusError = Self.chorusError(for: error)
            failure = chorusError
            if case .internalError(let detail) = chorusError {
                context.logger.error("request failed", metadata: ["error": "\(detail)", "path": "\(request.uri.path)"])
            }
            response = Self.errorResponse(chorusError, skillSpace: SkillSpaceWire.covers(path: request.uri.path))
        }
        if response.status.code >= 500 { span?.setStatus(SpanStatus(code: .error, message: failure?.code)) }
        response.headers[.requestID] = context.requestID
        return response
    }

    static func chorusError(for error: any Error) -> ChorusError {
        switch error {
        case let error as ChorusError:
            return error
        case let error as any HTTPResponseError:
            switch error.status.code {
            case 404: return .unknownURL
            case 405: return .methodNotAllowed
            case 413: return .payloadTooLarge(limit: nil)
            default: return .invalidRequest(message: error.status.reasonPhrase, param: nil, code: nil)
            }
        default:
            return .internalError("\(error)")
        }
    }

    /// - Parameter skillSpace: draw the body in SkillSpace's shape (its routes) instead of OpenAI's.
    static func errorResponse(_ error: ChorusError, skillSpace: Bool = false) -> Response {
        let status = HTTPResponse.Status(code: error.httpStatus)
        let data = skillSpace ? SkillSpaceError(error).encoded : (try? JSONEncoder().encode(error.body)) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json"]
        if case .rateLimited(_, _, let retryAfter?) = error {
            headers[.retryAfter] = String(retryAfter)
        }
        if case .unauthorized = error {
            headers[.wwwAuthenticate] = #"Bearer realm="chorus""#
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

