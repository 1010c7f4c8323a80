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
        (.get, "/", .anonymous),       // the chat page (the exact path only)
        (.get, "/web", .anonymous),    // its files
        (.get, "/openapi.json", .anonymous),
        (.get, "/docs", .anonymous),
        (.get, "/healthz", .anonymous),
        (.get, "/metrics", .permission(.adminMetrics)),
        (.get, "/readyz", .anonymous),
        (.post, "/v1/auth/register", .anonymous),
        (.post, "/v1/auth/login", .anonymous),
        (nil, "/v1/auth", .signedIn),
        (nil, "/v1/api-keys", .permission(.keys)),
        (nil, "/v1/models", .permission(.chat)),
        (nil, "/v1/chat/completions", .permission(.chat)),
        (nil, "/api/chat/completions", .permission(.chat)),
        (nil, "/api/ai", .permission(.chat)),
        (nil, "/api/ai/qwen-async", .permission(.tasks)),   // and `chat` (checked by the route)
        (nil, "/ws/ai", .permission(.tasks)),
        (nil, "/api/tasks", .permission(.tasks)),
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
        // The rules are lowercase; an ASCII path is compared without regard to case.
        let path = isNormal(rawPath) ? rawPath : normalized(rawPath)
        var best: (length: Int, requirement: Requirement)?
        for rule in rules where rule.method == nil || rule.method == method {
            let prefix = rule.prefix.utf8
            guard path.utf8.starts(with: prefix, by: { lowercased($0) == $1 }) else { continue }
            // At a segment boundary: the whole path, or the prefix followed by `/`.
            let rest = path.utf8.dropFirst(prefix.count)
            guard rest.isEmpty || rest.first == UInt8(ascii: "/") else { continue }
            if prefix.count > (best?.length ?? -1) { best = (prefix.count, rule.requirement) }
        }
        return best?.requirement ?? .signedIn
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }

    /// Percent-decoded, lowercased, with empty segments dropped.
    private static func normalized(_ rawPath: String) -> String {
        let decoded = (rawPath.removingPercentEncoding ?? rawPath).lowercased()
        return "/" + decoded.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// Whether `normalized` would return the path as it is, but for the case of its letters (the
    /// usual case, checked on bytes): it starts with `/`, and has no `%`, nothing but ASCII, and no
    /// empty segment.
    private static func isNormal(_ path: String) -> Bool {
        var previous: UInt8 = 0
        var count = 0
        for byte in path.utf8 {
            if count == 0, byte != UInt8(ascii: "/") { return false }
            if byte == UInt8(ascii: "%") || byte >= 0x80 { return false }
            if byte == UInt8(ascii: "/"), previous == UInt8(ascii: "/") { return false }
            previous = byte
            count += 1
        }
        return count == 1 || (count > 1 && previous != UInt8(ascii: "/"))
    }
}
