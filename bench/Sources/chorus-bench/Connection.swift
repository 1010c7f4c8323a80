import NIOCore
import NIOHTTP1
import NIOPosix

/// One request/response (or, for a task, two in a row) on a connection. Everything runs on the
/// connection's event loop, so no locks: the driver, its connections and exchanges are confined
/// to one loop (hence `@unchecked Sendable`).
protocol Exchange: AnyObject {
    /// When the work was supposed to start (open loop) or was sent (closed loop).
    var intended: UInt64 { get }
    func start(on connection: Connection)
    func head(_ head: HTTPResponseHead, at now: UInt64)
    func body(_ buffer: ByteBuffer, at now: UInt64)
    func end(at now: UInt64)
    func fail(_ message: String, at now: UInt64)
}

/// A prepared request: built once, written many times.
struct RequestTemplate: Sendable {
    var method: HTTPMethod
    var path: String
    var headers: HTTPHeaders
    var body: ByteBuffer?

    init(method: HTTPMethod, path: String, host: String, port: Int, headers: [(String, String)], body: ByteBuffer?) {
        self.method = method
        self.path = path
        self.body = body
        var fields = HTTPHeaders()
        fields.add(name: "Host", value: "\(host):\(port)")
        fields.add(name: "User-Agent", value: "chorus-bench")
        for (name, value) in headers { fields.add(name: name, value: value) }
        if let body {
            fields.add(name: "Content-Length", value: String(body.readableBytes))
        }
        self.headers = fields
    }
}

/// A keep-alive HTTP/1.1 client connection.
final class Connection: @unchecked Sendable {
    let loop: any EventLoop
    unowned let driver: Driver
    var channel: (any Channel)?
    var exchange: (any Exchange)?
    var keepAlive = true
    var closed = false

    init(loop: any EventLoop, driver: Driver) {
        self.loop = loop
        self.driver = driver
    }

    func send(_ request: RequestTemplate, exchange: any Exchange) {
        guard let channel, !closed else {
            exchange.fail("connection closed before the request", at: nowNanoseconds())
            return
        }
        self.exchange = exchange
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.path, headers: request.headers)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body = request.body {
            channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    func received(_ part: HTTPClientResponsePart) {
        let now = nowNanoseconds()
        switch part {
        case .head(let head):
            keepAlive = head.isKeepAlive
            exchange?.head(head, at: now)
        case .body(let buffer):
            exchange?.body(buffer, at: now)
        case .end:
            let finished = exchange
            exchange = nil
            finished?.end(at: now)
        }
    }

    func close() {
        guard !closed else { return }
        closed = true
        channel?.close(promise: nil)
    }

    /// The channel went away: fail what was running and tell the driver.
    func becameInactive(reason: String) {
        closed = true
        let running = exchange
        exchange = nil
        running?.fail(reason, at: nowNanoseconds())
        driver.connectionClosed(self)
    }
}

final class ResponseHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    let connection: Connection
    var lastError: String?

    init(connection: Connection) {
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.received(Self.unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        lastError = "\(error)"
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        connection.becameInactive(reason: lastError.map { "connection error: \($0)" } ?? "connection closed by the server")
        context.fireChannelInactive()
    }
}
