import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1

extension HTTPServerBuilder {
    /// HTTP/1 with the WebSocket upgrade, as `http1WebSocketUpgrade(webSocketRouter:)`, except
    /// that a connection which has not yet sent a whole request head is closed when the server
    /// shuts down.
    ///
    /// In hummingbird-websocket 2.8 nothing in a new connection's pipeline watches for shutdown
    /// until the first request head has arrived (the upgrade handler decides first, and it does
    /// not handle `ChannelShouldQuiesceEvent`). One connection that sent nothing, such as a
    /// browser's preconnect, kept `chorus serve` from stopping on SIGTERM.
    static func chorusHTTP1(webSocketRouter: Router<ChorusRequestContext>) -> HTTPServerBuilder {
        let webSocketResponder = webSocketRouter.buildResponder()
        return HTTPServerBuilder { responder in
            ClosingBeforeFirstRequest(base: HTTP1WebSocketUpgradeChannel(
                responder: responder, webSocketResponder: webSocketResponder, configuration: .init()))
        }
    }
}

/// Hummingbird's HTTP/1 and WebSocket channel with `QuiesceBeforeFirstRequestHandler` first in
/// the pipeline.
struct ClosingBeforeFirstRequest: ServerChildChannel {
    let base: HTTP1WebSocketUpgradeChannel

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(QuiesceBeforeFirstRequestHandler(), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: HTTP1WebSocketUpgradeChannel.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// On `ChannelShouldQuiesceEvent` (the server is shutting down), ends a connection that is still
/// waiting for its first request head: it reports the input closed, which the upgrade handler
/// takes as the end of the connection, and closes it. Once the head has arrived, the upgrade
/// handler has left the pipeline and Hummingbird's own handlers finish the connection (an
/// answer in progress is completed first), so the event is passed on.
final class QuiesceBeforeFirstRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent, Self.waitingForFirstRequest(context.pipeline) else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        context.close(promise: nil)
    }

    private static func waitingForFirstRequest(_ pipeline: ChannelPipeline) -> Bool {
        (try? pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<HTTP1WebSocketUpgradeChannel.UpgradeResult>.self)) != nil
    }
}
