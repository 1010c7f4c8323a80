import ChorusCore
import ChorusRuntime
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Tracing

extension HTTPField.Name {
    static let csrfToken = Self("X-CSRF-Token")!
    static let forwardedFor = Self("X-Forwarded-For")!
    static let forwardedProto = Self("X-Forwarded-Proto")!
}

/// Who is asking, may they, and how often: finds the client's address, authenticates the request
/// (API key, bearer session or cookie session with its CSRF token), checks the route's permission
/// from `AccessPolicy`, applies the per-IP, per-user and per-key request limits, and records every
/// mutating request, allowed or not, in the audit log.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = ChorusRequestContext

    static let sessionCookie = "chorus_session"
    /// JSON bodies up to this size are parsed for the audit log's parameters.
    static let auditedBodyBytes = 64 * 1024

    /// nil when accounts are off (`auth.enabled: false`).
    let accounts: AuthService?
    let limiter: any RateLimiter
    let limits: ChorusConfiguration.Limits
    let trustedProxies: Set<String>
    let audit: AuditLog?
    /// Reads `GET /metrics` without an account (`metrics.scrape_token_env`).
    var metricsScrapeToken: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        var request = request
        let started = ContinuousClock.now
        context.clientIP = clientIP(request, peer: context.peerIP)
        context.viaHTTPS = trustedProxies.contains(context.peerIP) && request.headers[.forwardedProto]?.lowercased() == "https"
        let mutating = Self.isMutating(request)
        var params: JSONValue = .object([:])
        do {
            // Refused requests are logged with their parameters too; only bodies up to
            // `auditedBodyBytes` are read here, so an anonymous client cannot make us buffer more.
            if mutating, audit != nil {
                params = try await auditParameters(&request)
            }
            try await admit(request, context: &context)
            let response = try await next(request, context)
            if mutating { record(request, context: context, params: params, status: Int(response.status.code), since: started) }
            return response
        } catch {
            if mutating { record(request, context: context, params: params, status: APIMiddleware.chorusError(for: error).httpStatus, since: started) }
            throw error
        }
    }

    static func isMutating(_ request: Request) -> Bool {
        [.post, .put, .patch, .delete].contains(request.method)
    }

    // MARK: Admission

    // The helpers are not inlined into `handle`, whose frame stays allocated for the whole request
    // (a streamed answer's included): a task keeps the async-frame space of its deepest moment.
    @inline(never)
    private func admit(_ request: Request, context: inout Context) async throws {
        let requirement = AccessPolicy.requirement(method: request.method, path: request.uri.path)
        guard let accounts else {
            context.principal = .local
            try await limit(principal: nil, requirement: requirement, request: request, context: context)
            return
        }
        if requirement == .permission(.adminMetrics), let token = metricsScrapeToken,
           let sent = request.headers[.authorization], Secrets.constantTimeEquals(sent, "Bearer " + token) {
            try await limit(principal: nil, requirement: requirement, request: request, context: context)
            return
        }
        if requirement != .anonymous {
            context.principal = try await withSpan("auth.credential_check") { span in
                let principal = try await authenticate(request, accounts: accounts)
                span.attributes["chorus.user_id"] = principal.userID
                return principal
            }
        }
        if case .permission(let permission) = requirement {
            try context.require(permission)
        }
        try await limit(principal: context.principal, requirement: requirement, request: request, context: context)
    }

    private func authenticate(_ request: Request, accounts: AuthService) async throws -> Principal {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw ChorusError.unauthorized(message: "The Authorization header must be `Bearer <API key>`.", code: "invalid_api_key")
            }
            var trimmed = parts[1].drop(while: \.isWhitespace)
            while trimmed.last?.isWhitespace == true { trimmed.removeLast() }
            let token = String(trimmed)
            guard let principal = try await accounts.principal(bearer: token) else {
                throw ChorusError.unauthorized(
                    message: "Incorrect API key provided, or it was revoked or has expired. Create a key with POST /v1/api-keys.",
                    code: "invalid_api_key")
            }
            return principal
        }
        if let token = request.cookies[Self.sessionCookie]?.value {
            guard let principal = try await accounts.principal(session: token, viaCookie: true) else {
                throw ChorusError.unauthorized(message: "Your session has ended; sign in again.", code: "invalid_api_key")
            }
            if Self.isMutating(request) {
                // Cookies ride along with cross-site requests; the CSRF token does not.
                guard let sent = request.headers[.csrfToken], Secrets.constantTimeEquals(sent, Secrets.csrfToken(forSession: token)) else {
                    throw ChorusError.forbidden(message: "Missing or wrong X-CSRF-Token header (see GET /v1/auth/me).", code: "csrf_failed")
                }
            }
            return principal
        }
        throw ChorusError.unauthorized(
            message: "You didn't provide an API key. Send `Authorization: Bearer <API key>`, or sign in at POST /v1/auth/login.",
            code: "missing_credentials")
    }

    private func limit(principal: Principal?, requirement: AccessPolicy.Requirement, request: Request, context: Context) async throws {
        var items: [RateLimitItem]
        if requirement == .anonymous {
            // Probes are free; sign-in and registration are limited per address against guessing.
            guard request.method == .post else { return }
            items = [RateLimitItem(kind: "requests", scope: "IP address (sign-in attempts)", key: "login:\(context.clientIP)", perMinute: limits.loginAttemptsPerMinute, cost: 1, charge: true)]
        } else {
            items = AuthService.requestItems(limits: limits, principal: principal, ip: context.clientIP)
        }
        items.removeAll { $0.perMinute <= 0 }
        guard !items.isEmpty else { return }
        let decision: RateDecision
        do {
            decision = try await limiter.acquire(items)
        } catch {
            throw ChorusError.unavailable("the rate limiter cannot be reached")
        }
        if case .denied(let item, let wait) = decision {
            throw AuthService.limitError(item, retryAfterMilliseconds: wait)
        }
    }

    // MARK: Client address

    /// The peer, or behind a trusted proxy the right-most address of `X-Forwarded-For` that is not
    /// itself a trusted proxy.
    func clientIP(_ request: Request, peer: String) -> String {
        guard trustedProxies.contains(peer) else { return peer }
        let hops = request.headers[values: .forwardedFor].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed() where !hop.isEmpty && !trustedProxies.contains(hop) {
            return String(hop.prefix(64))
        }
        return peer
    }

    // MARK: Audit

    @inline(never)
    private func auditParameters(_ request: inout Request) async throws -> JSONValue {
        var params = AuditRedaction.redact(query: request.uri.queryParameters.map { (String($0.key), String($0.value)) })
        let contentType = request.headers[.contentType]?.lowercased() ?? ""
        let length = request.headers[.contentLength].flatMap { Int($0) }
        // Small JSON bodies are read for their fields (routes keep their own, larger limits: the
        // body is only buffered here, not limited); others are described by type and size.
        if contentType.hasPrefix("application/json"), let length, length <= Self.auditedBodyBytes {
            let body = try await request.collectBody(upTo: Self.auditedBodyBytes)
            if case .object(var fields) = params, let parsed = try? JSONValue.parse(body.readableBytesView), case .object(let bodyFields) = AuditRedaction.redact(parsed) {
                for (name, value) in bodyFields { fields[name] = value }
                params = .object(fields)
            }
        } else if !contentType.isEmpty || length != nil, case .object(var fields) = params {
            if !contentType.isEmpty { fields["content_type"] = .string(String(contentType.prefix(64))) }
            if let length { fields["content_length"] = .int(length) }
            params = .object(fields)
        }
        return params
    }

    private func record(_ request: Request, context: Context, params: JSONValue, status: Int, since started: ContinuousClock.Instant) {
        guard let audit else { return }
        let elapsed = ContinuousClock.now - started
        let now = nowMilliseconds()
        audit.record(AuditEntry(
            id: "aud_\(String(now).leftPadded(to: 14))\(Secrets.random(8))", createdAt: now,
            userID: context.principal?.userID, apiKeyID: context.principal?.apiKeyID, ip: context.clientIP,
            method: request.method.rawValue, path: String(request.uri.path.prefix(512)), params: params, status: status,
            durationMilliseconds: elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000,
            requestID: context.requestID))
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
