import HTTPTypes
import Hummingbird
import Synchronization

/// The methods each route of the router answers, so that a request with a known path and another
/// method gets 405 with `Allow` (the router itself answers 404 for both). `buildRouter` fills it
/// once every route is added; only a request the router did not match looks it up.
final class RouteMethods: Sendable {
    private let routes = Mutex<[(path: RouterPath, method: HTTPRequest.Method)]>([])

    func set(_ routes: [Router<ChorusRequestContext>.RouteDescription]) {
        self.routes.withLock { $0 = routes.map { ($0.path, $0.method) } }
    }

    /// The methods of the routes whose path matches `path`, sorted; empty for an unknown path.
    func allowed(path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        let methods = routes.withLock { routes in
            Set(routes.filter { Self.matches($0.path, segments) }.map(\.method.rawValue))
        }
        return methods.sorted()
    }

    static func matches(_ path: RouterPath, _ segments: [Substring]) -> Bool {
        var index = 0
        for component in path.components {
            // `**` takes the rest (one segment or more).
            if component.description == "**" { return index < segments.count }
            guard index < segments.count, component ~= segments[index] else { return false }
            index += 1
        }
        return index == segments.count
    }
}
