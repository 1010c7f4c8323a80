public import ChorusCore
public import Hummingbird
public import HummingbirdWebSocket
import Logging
import NIOCore

/// The per-request context: the request id every response carries, the client's address, and who
/// is asking (set by `AuthMiddleware`). It also carries the WebSocket handler of an upgraded
/// request, so one router serves HTTP and WebSocket routes, and the coders of the wire types
/// (`request.decode(as:context:)`, handlers returning `ResponseEncodable`).
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

    /// The largest body `request.decode(as:context:)` reads (413 beyond): 64 KiB, the accounts'
    /// limit; a route with another limit decodes with `bodyLimit(_:)`.
    public var maxUploadSize = 64 * 1024

    /// JSON bodies into wire types, bad input as OpenAI-shaped 400s naming the field.
    public var requestDecoder: ChorusRequestDecoder { ChorusRequestDecoder() }

    /// Wire types as JSON bodies.
    public var responseEncoder: ChorusResponseEncoder { ChorusResponseEncoder() }

    /// This context with a body limit of `bytes` for `request.decode(as:context:)`.
    func bodyLimit(_ bytes: Int) -> Self {
        var context = self
        context.maxUploadSize = bytes
        return context
    }

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
