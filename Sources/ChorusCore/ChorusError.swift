/// Every error Chorus reports to a client. The HTTP layer maps each case to a status code and an
/// OpenAI-shaped body `{"error":{"message","type","param","code"}}` in one place.
public enum ChorusError: Error, Sendable, Equatable {
    /// Malformed JSON, a missing or ill-typed field: 400.
    case invalidRequest(message: String, param: String?, code: String?)
    /// The model is not configured: 404.
    case modelNotFound(String)
    /// A conversation (or other object) that does not exist for this owner: 404.
    case notFound(what: String, id: String)
    /// The request body exceeds the configured limit: 413.
    /// The body is over `limit` bytes (nil: over what the HTTP server itself accepts): 413.
    case payloadTooLarge(limit: Int?)
    /// No route has this path: 404.
    case unknownURL
    /// The path exists, not with this method: 405.
    case methodNotAllowed
    /// The upstream answered with an error or broke the protocol: 502.
    case upstreamError(message: String, upstreamStatus: Int?, retryAfterSeconds: Double? = nil)
    /// The upstream did not answer in time: 504.
    case upstreamTimeout(phase: TimeoutPhase, seconds: Double)
    /// The model exists but cannot serve now (the local model is still loading): 503.
    case modelUnavailable(model: String, reason: String)
    /// An `Idempotency-Key` reused with a different request: 422.
    case idempotencyMismatch
    /// An `Idempotency-Key` whose first request is still being processed: 409.
    case idempotencyInFlight
    /// The queue or the database cannot take work now: 503.
    case unavailable(String)
    /// No credentials, or credentials that are wrong, revoked or expired: 401.
    case unauthorized(message: String, code: String)
    /// Signed in, but not allowed (a missing permission, a failed CSRF check, closed registration): 403.
    case forbidden(message: String, code: String)
    /// The object exists already (an email taken, a role in use): 409.
    case conflict(message: String, code: String)
    /// Over a rate limit (`kind` is `requests` or `tokens`) or a token budget: 429.
    case rateLimited(kind: String, message: String, retryAfterSeconds: Int?)
    /// The token budget is spent: 429 `insufficient_quota`.
    case quotaExceeded(message: String)
    /// Anything else: 500, with no internals in the body.
    case internalError(String)

    public enum TimeoutPhase: String, Sendable, Equatable {
        case connect
        case firstToken = "first_token"
        case betweenTokens = "between_tokens"
        case total
    }
}

extension ChorusError {
    /// The OpenAI error `type`.
    public var type: String {
        switch self {
        case .invalidRequest, .modelNotFound, .notFound, .payloadTooLarge, .unknownURL, .methodNotAllowed, .idempotencyMismatch, .idempotencyInFlight, .conflict: "invalid_request_error"
        case .unauthorized: "invalid_request_error"
        case .forbidden: "permission_error"
        case .rateLimited(let kind, _, _): kind
        case .quotaExceeded: "insufficient_quota"
        case .upstreamError, .upstreamTimeout, .modelUnavailable: "upstream_error"
        case .unavailable, .internalError: "server_error"
        }
    }

    /// The OpenAI error `code`.
    public var code: String? {
        switch self {
        case .invalidRequest(_, _, let code): code
        case .modelNotFound: "model_not_found"
        case .notFound: "not_found"
        case .payloadTooLarge: "payload_too_large"
        case .unknownURL: "unknown_url"
        case .methodNotAllowed: "method_not_allowed"
        case .upstreamError: "upstream_error"
        case .upstreamTimeout(let phase, _): "upstream_timeout_\(phase.rawValue)"
        case .modelUnavailable: "model_unavailable"
        case .idempotencyMismatch: "idempotency_key_reused"
        case .idempotencyInFlight: "idempotency_key_in_use"
        case .unavailable: "service_unavailable"
        case .unauthorized(_, let code), .forbidden(_, let code), .conflict(_, let code): code
        case .rateLimited: "rate_limit_exceeded"
        case .quotaExceeded: "insufficient_quota"
        case .internalError: "internal_error"
        }
    }

    /// The OpenAI error `param`.
    public var param: String? {
        switch self {
        case .invalidRequest(_, let param, _): param
        case .modelNotFound: "model"
        default: nil
        }
    }

    public var message: String {
        switch self {
        case .invalidRequest(let message, _, _): message
        case .modelNotFound(let model): "The model `\(model)` does not exist or you do not have access to it."
        case .notFound(let what, let id): "No \(what) found with id '\(id)'."
        case .payloadTooLarge(let limit?): "The request body is larger than the limit of \(limit) bytes."
        case .payloadTooLarge(nil): "The request body is larger than the server accepts."
        case .unknownURL: "Unknown request URL. Please check the URL and method."
        case .methodNotAllowed: "Method not allowed for this URL."
        case .upstreamError(let message, let status, _):
            status.map { "The upstream model returned an error (HTTP \($0)): \(message)" } ?? "The upstream model failed: \(message)"
        case .upstreamTimeout(let phase, let seconds):
            "The upstream model did not respond in time (\(phase.rawValue.replacingUnderscores) timeout of \(seconds.formattedSeconds) s)."
        case .modelUnavailable(let model, let reason): "The model `\(model)` is not available right now: \(reason)"
        case .idempotencyMismatch: "This Idempotency-Key was already used with a different request."
        case .idempotencyInFlight: "A request with this Idempotency-Key is still being processed; retry later."
        case .unavailable(let what): "The service is temporarily unavailable: \(what)"
        case .unauthorized(let message, _), .forbidden(let message, _), .conflict(let message, _), .rateLimited(_, let message, _), .quotaExceeded(let message): message
        case .internalError: "The server had an error while processing your request."
        }
    }

    /// The HTTP status code for this error.
    public var httpStatus: Int {
        switch self {
        case .invalidRequest: 400
        case .modelNotFound, .notFound: 404
        case .payloadTooLarge: 413
        case .unknownURL: 404
        case .methodNotAllowed: 405
        case .upstreamError: 502
        case .upstreamTimeout: 504
        case .modelUnavailable, .unavailable: 503
        case .idempotencyMismatch: 422
        case .idempotencyInFlight, .conflict: 409
        case .unauthorized: 401
        case .forbidden: 403
        case .rateLimited, .quotaExceeded: 429
        case .internalError: 500
        }
    }

    /// The body sent to clients, also used for SSE error events and stored message metadata.
    public var body: ErrorBody {
        ErrorBody(error: .init(message: message, type: type, param: param, code: code))
    }
}

/// `{"error":{"message","type","param","code"}}` — OpenAI's `ErrorResponse`.
public struct ErrorBody: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var message: String
        public var type: String
        public var param: String?
        public var code: String?

        public init(message: String, type: String, param: String?, code: String?) {
            self.message = message
            self.type = type
            self.param = param
            self.code = code
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(message, forKey: .message)
            try container.encode(type, forKey: .type)
            try container.encode(param, forKey: .param)  // null, not absent: the schema requires the key
            try container.encode(code, forKey: .code)
        }
    }

    public var error: Detail

    public init(error: Detail) {
        self.error = error
    }
}

extension String {
    fileprivate var replacingUnderscores: String {
        split(separator: "_").joined(separator: " ")
    }
}

extension Double {
    fileprivate var formattedSeconds: String {
        self == rounded() ? String(Int(self)) : String(self)
    }
}
