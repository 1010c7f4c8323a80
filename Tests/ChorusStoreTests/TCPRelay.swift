import NIOCore
import NIOPosix
import Synchronization

/// A TCP relay on 127.0.0.1 to a server, for a fault a real network has: `freeze()` makes every
/// connection open at that moment stop passing bytes either way without closing, as a path that
/// a firewall dropped looks. Connections made later pass bytes as usual.
final class TCPRelay: Sendable {
    let port: Int
    private let server: any Channel
    private let state: State

    final class State: Sendable {
        private let next = Atomic<Int>(0)
        private let frozenBelow = Atomic<Int>(0)

        func number() -> Int { next.wrappingAdd(1, ordering: .relaxed).oldValue }
        func freeze() { frozenBelow.store(next.load(ordering: .relaxed), ordering: .relaxed) }
        func isFrozen(_ number: Int) -> Bool { number < frozenBelow.load(ordering: .relaxed) }
    }

    static func start(to host: String, port: Int) async throws -> TCPRelay {
        let state = State()
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                let number = state.number()
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            try outbound.pipeline.syncOperations.addHandler(Forward(peer: inbound, number: number, state: state))
                        }
                    }
                    .connect(host: host, port: port)
                    .flatMapThrowing { outbound in
                        try inbound.pipeline.syncOperations.addHandler(Forward(peer: outbound, number: number, state: state))
                    }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TCPRelay(port: server.localAddress!.port!, server: server, state: state)
    }

    private init(port: Int, server: any Channel, state: State) {
        self.port = port
        self.server = server
        self.state = state
    }

    func freeze() { state.freeze() }

    func close() async {
        try? await server.close()
    }

    /// Passes what one side reads to the other side, unless the connection is frozen; closes the
    /// other side when this one closes.
    private final class Forward: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let peer: any Channel
        let number: Int
        let state: State

        init(peer: any Channel, number: Int, state: State) {
            self.peer = peer
            self.number = number
            self.state = state
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !state.isFrozen(number) else { return }
            peer.writeAndFlush(unwrapInboundIn(data), promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            peer.close(promise: nil)
            context.fireChannelInactive()
        }
    }
}
