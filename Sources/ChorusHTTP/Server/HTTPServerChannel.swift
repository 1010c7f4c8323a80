public import Hummingbird
public import HummingbirdCore
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP1

extension HTTPServerBuilder {
    /// HTTP/1 with the WebSocket upgrade, as `http1WebSocketUpgrade(webSocketRouter:)`, with an
    /// idle timeout that covers a connection's whole life: a connection that sends no request for
    /// `idleTimeoutSeconds` is closed, and so is one still waiting for its first request head when
    /// the server shuts down.
    ///
    /// Hummingbird's idle timeout starts only once the first request head has arrived. Before
    /// that, nothing in the pipeline watches the clock or the shutdown: hummingbird-websocket 2.8's
    /// upgrade handler decides first, and it ignores `ChannelShouldQuiesceEvent`. So one silent
    /// connection (a browser's preconnect) kept `chorus serve` from stopping on SIGTERM, and
    /// silent connections held their descriptors for ever.
    public static func chorusHTTP1(webSocketRouter: Router<ChorusRequestContext>, idleTimeoutSeconds: Double) -> HTTPServerBuilder {
        let webSocketResponder = webSocketRouter.buildResponder()
        let idleTimeout = TimeAmount.nanoseconds(Int64(idleTimeoutSeconds * 1_000_000_000))
        return HTTPServerBuilder { responder in
            ChorusHTTP1Channel(
                base: HTTP1WebSocketUpgradeChannel(
                    responder: responder, webSocketResponder: webSocketResponder,
                    configuration: .init(http1: .init(idleTimeout: idleTimeout))),
                idleTimeout: idleTimeout)
        }
    }
}

/// Hummingbird's HTTP/1 and WebSocket channel with `FirstRequestHandler` first in the pipeline.
struct ChorusHTTP1Channel: ServerChildChannel {
    let base: HTTP1WebSocketUpgradeChannel
    let idleTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<HTTP1WebSocketUpgradeChannel.Value> {
        do {
            try channel.pipeline.syncOperations.addHandler(FirstRequestHandler(timeout: idleTimeout), position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return base.setup(channel: channel, logger: logger)
    }

    func handle(value: HTTP1WebSocketUpgradeChannel.Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}

/// Ends a connection that is still waiting for its first request head when `timeout` has passed
/// or the server starts to shut down (`ChannelShouldQuiesceEvent`): it reports the input closed,
/// which the upgrade handler takes as the end of the connection, and closes it. Once the head
/// has arrived, the upgrade handler has left the pipeline and Hummingbird's own handlers take
/// over: the idle timeout between requests, and shutdown after the answer in progress.
final class FirstRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            timer = nil
            if Self.waitingForFirstRequest(context.pipeline) {
                end(context)
            } else {
                context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent, Self.waitingForFirstRequest(context.pipeline) else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        end(context)
    }

    private func end(_ context: ChannelHandlerContext) {
        context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        context.close(promise: nil)
    }

    private static func waitingForFirstRequest(_ pipeline: ChannelPipeline) -> Bool {
        (try? pipeline.syncOperations.handler(type: NIOTypedHTTPServerUpgradeHandler<HTTP1WebSocketUpgradeChannel.UpgradeResult>.self)) != nil
    }
}
