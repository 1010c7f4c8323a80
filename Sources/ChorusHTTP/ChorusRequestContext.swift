import ChorusCore
import Hummingbird
import HummingbirdWebSocket
import Logging

/// The per-request context: the request id every response carries, and the owner of what the
/// request reads and writes (a single local owner until accounts arrive). It also carries the
/// WebSocket handler of an upgraded request, so one router serves HTTP and WebSocket routes.
public struct ChorusRequestContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    public var requestID: String
    public var ownerID: String

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.webSocket = .init()
        self.requestID = Identifier.make("req_")
        self.ownerID = localOwnerID
    }
}
