import ChorusCore
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore

/// The per-request context: the request id every response carries, the client's address, and who
/// is asking (set by `AuthMiddleware`). It also carries the WebSocket handler of an upgraded
/// request, so one router serves HTTP and WebSocket routes.
public struct ChorusRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public var requestID: String
    /// nil until authenticated (and on public routes).
    public var principal: Principal?
    /// The client's address (from `X-Forwarded-For` only behind a trusted proxy).
    public var clientIP: String = "unknown"
    /// The client reached us over HTTPS (a trusted proxy's `X-Forwarded-Proto`).
    public var viaHTTPS = false

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.requestID = Identifier.ordered("req_")
        self.peerIP = source.channel.remoteAddress?.ipAddress ?? "unknown"
        self.clientIP = peerIP
    }

    /// The address of the TCP peer (a proxy, if there is one).
    public let peerIP: String

    /// The owner of what this request creates and lists.
    public var ownerID: String { principal?.userID ?? localOwnerID }

    /// The owner whose objects this request may read and change by id: nil (anyone's) for
    /// holders of `admin:data`.
    public var visibleOwner: String? {
        principal?.has(.adminData) == true ? nil : ownerID
    }

    /// Throws 403 unless the principal has `permission` (for routes needing more than one).
    public func require(_ permission: Permission) throws {
        guard principal?.has(permission) ?? false else {
            throw ChorusError.forbidden(message: "This request needs the '\(permission.rawValue)' permission.", code: "insufficient_permissions")
        }
    }
}
