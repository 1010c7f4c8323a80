import ChorusCore
import Foundation
import HTTPTypes

/// What each route needs, in one table. Every path not listed needs a signed-in caller, so a new
/// route is closed until it is added here.
enum AccessPolicy {
    enum Requirement: Equatable {
        /// Anyone, without credentials.
        case anonymous
        /// Any signed-in caller.
        case signedIn
        case permission(Permission)
    }

    /// (method or nil for any, path prefix ending at a segment boundary, requirement); the longest
    /// matching prefix wins.
    static let rules: [(method: HTTPRequest.Method?, prefix: String, requirement: Requirement)] = [
        (.get, "/healthz", .anonymous),
        (.get, "/readyz", .anonymous),
        (.post, "/v1/auth/register", .anonymous),
        (.post, "/v1/auth/login", .anonymous),
        (nil, "/v1/auth", .signedIn),
        (nil, "/v1/api-keys", .permission(.keys)),
        (nil, "/v1/models", .permission(.chat)),
        (nil, "/v1/chat/completions", .permission(.chat)),
        (nil, "/v1/conversations", .permission(.conversations)),
        (nil, "/v1/batches", .permission(.tasks)),
        (nil, "/v1/tasks", .permission(.tasks)),
        (nil, "/v1/files", .permission(.files)),
        (nil, "/v1/admin/users", .permission(.adminUsers)),
        (nil, "/v1/admin/roles", .permission(.adminUsers)),
        (nil, "/v1/admin/invites", .permission(.adminUsers)),
        (nil, "/v1/admin/audit", .permission(.adminAudit)),
        (nil, "/v1/admin", .permission(.adminOps)),
    ]

    /// - Parameter path: the raw path; it is matched percent-decoded, lowercased and with empty
    ///   segments dropped, so that no spelling the router accepts slips past a stricter rule.
    static func requirement(method: HTTPRequest.Method, path rawPath: String) -> Requirement {
        let decoded = (rawPath.removingPercentEncoding ?? rawPath).lowercased()
        let path = "/" + decoded.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
        var best: (length: Int, requirement: Requirement)?
        for rule in rules where rule.method == nil || rule.method == method {
            guard path == rule.prefix || path.hasPrefix(rule.prefix + "/") else { continue }
            if rule.prefix.count > (best?.length ?? -1) { best = (rule.prefix.count, rule.requirement) }
        }
        return best?.requirement ?? .signedIn
    }
}
