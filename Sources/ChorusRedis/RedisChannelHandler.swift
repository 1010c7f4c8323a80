import Logging
import NIOCore
import Synchronization

/// Whether a connection still accepts commands; shared by the handler (which clears it the moment
/// it stops accepting) and ``RedisConnection`` (which reads it from any thread).
final class ConnectionStatus: Sendable {
    private let open = Atomic<Bool>(true)

    var isOpen: Bool { self.open.load(ordering: .acquiring) }

    func markClosed() { self.open.store(false, ordering: .releasing) }
}

/// A command refused before any byte of it was written, because its connection was closing.
/// ``RedisClient`` retries such commands on another connection; ``RedisConnection`` reports ``RedisError/connectionClosed``.
struct CommandNotSent: Error {}

/// Commands handed to ``RedisChannelHandler``: encoded together, written in one write, answered in order.
struct RedisRequest: Sendable {
    let commands: [RedisCommand]
    /// One per command, in the same order.
    let promises: [EventLoopPromise<RESPValue>]
    /// When the replies are overdue; `nil` waits forever.
    let deadline: NIODeadline?
}

/// The NIO side of a ``RedisConnection``: encodes requests, parses replies and matches them to the
/// requests in FIFO order (Redis answers in the order it receives commands, so any number may be
/// in flight). Everything here runs on the channel's event loop.
///
/// A reply that is overdue closes the connection: later replies would still be matched in order,
/// but the overdue one may never come (a blocking command, a stalled server), so the connection
/// cannot be trusted. The overdue commands fail with ``RedisError/timeout``, everything else in
/// flight with ``RedisError/connectionClosed``. One timer per connection watches the earliest deadline.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline?
    }

    private var parser: RESPParser
    private var received: ByteBuffer?
    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var isClosed = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private let logger: Logger
    private let status: ConnectionStatus

    init(parserLimits: RESPParser.Limits, status: ConnectionStatus, logger: Logger) {
        self.parser = RESPParser(limits: parserLimits)
        self.status = status
        self.logger = logger
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        guard !self.isClosed else {
            for responsePromise in request.promises { responsePromise.fail(CommandNotSent()) }
            promise?.fail(CommandNotSent())
            return
        }
        var buffer = context.channel.allocator.buffer(capacity: 64 * request.commands.count)
        for command in request.commands {
            RESPEncoder.encode(command, into: &buffer)
        }
        for responsePromise in request.promises {
            self.pending.append(Pending(promise: responsePromise, deadline: request.deadline))
        }
        if let deadline = request.deadline {
            self.armTimer(context: context, deadline: deadline)
        }
        context.write(self.wrapOutboundOut(buffer), promise: promise)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = self.unwrapInboundIn(data)
        guard !self.isClosed else { return }
        if self.received == nil {
            self.received = incoming
        } else {
            self.received!.writeBuffer(&incoming)
        }
        do {
            while !self.isClosed, let reply = try self.parser.next(from: &self.received!) {
                self.deliver(reply, context: context)
            }
        } catch {
            self.logger.error("Invalid data from Redis; closing the connection", metadata: ["error": "\(error)"])
            self.closeFailingAll(context: context) { _ in error }
            return
        }
        if let buffer = self.received {
            if buffer.readableBytes == 0 {
                self.received = nil
            } else if buffer.readerIndex > 64 * 1024 {
                self.received!.discardReadBytes()
            }
        }
    }

    private func deliver(_ reply: RESPValue, context: ChannelHandlerContext) {
        if case .push(let elements) = reply {
            // Out-of-band RESP3 data (pub/sub, client tracking); Chorus subscribes to neither.
            self.logger.debug("Ignoring a RESP3 push message", metadata: ["kind": "\(elements.first?.string ?? "?")"])
            return
        }
        guard let next = self.pending.popFirst() else {
            self.logger.error("Reply from Redis without a command waiting for it; closing the connection")
            self.closeFailingAll(context: context) { _ in RedisError.protocolError("reply without a pending command") }
            return
        }
        next.promise.succeed(reply)  // a no-op when the caller gave up (cancelled) already
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.isClosed = true
        self.status.markClosed()
        self.cancelTimer()
        self.failAll { _ in RedisError.connectionClosed }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("Redis connection error; closing", metadata: ["error": "\(error)"])
        self.closeFailingAll(context: context) { _ in RedisError.connectionClosed }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.isClosed = true
        self.status.markClosed()
        self.cancelTimer()
        self.failAll { _ in RedisError.connectionClosed }
    }

    // MARK: Timeouts

    private func armTimer(context: ChannelHandlerContext, deadline: NIODeadline) {
        if let current = self.timerDeadline, current <= deadline { return }
        self.timer?.cancel()
        self.timerDeadline = deadline
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.timerFired(context: context)
        }
    }

    private func cancelTimer() {
        self.timer?.cancel()
        self.timer = nil
        self.timerDeadline = nil
    }

    private func timerFired(context: ChannelHandlerContext) {
        self.timer = nil
        self.timerDeadline = nil
        guard !self.isClosed else { return }
        let now = NIODeadline.now()
        let isOverdue: (Pending) -> Bool = { entry in entry.deadline.map { $0 <= now } ?? false }
        if self.pending.contains(where: isOverdue) {
            self.logger.warning("Redis reply overdue; closing the connection", metadata: ["in_flight": "\(self.pending.count)"])
            self.closeFailingAll(context: context) { isOverdue($0) ? RedisError.timeout : RedisError.connectionClosed }
        } else if let earliest = self.pending.lazy.compactMap(\.deadline).min() {
            self.armTimer(context: context, deadline: earliest)
        }
    }

    // MARK: Failing

    private func closeFailingAll(context: ChannelHandlerContext, error: (Pending) -> any Error) {
        guard !self.isClosed else { return }
        self.isClosed = true
        self.status.markClosed()
        self.cancelTimer()
        self.failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: (Pending) -> any Error) {
        let failed = self.pending
        self.pending.removeAll()
        for entry in failed {
            entry.promise.fail(error(entry))
        }
    }
}

@available(*, unavailable)
extension RedisChannelHandler: Sendable {}
