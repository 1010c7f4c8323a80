public import Logging
public import NIOCore
public import NIOPosix
import Synchronization

private let connectionCounter = Atomic<Int>(0)

/// One connection to Redis, pipelined: any number of tasks may send on it at once and each gets
/// its own reply (Redis answers in order, replies are matched first in, first out).
///
/// A connection does not reconnect: once closed (by the server, a network error, an overdue reply
/// or ``close()``), every call fails with ``RedisError/connectionClosed``. ``RedisClient`` owns
/// reconnection. Blocking commands hold the connection on the server; send them only on a
/// connection nobody else uses (``RedisClient/withDedicatedConnection(isolation:timeout:_:)``).
///
/// Cancelling a task that waits for a reply makes it throw `CancellationError` at once; the reply
/// is still read and dropped, and the connection stays usable.
public final class RedisConnection: RedisCommandSender, Sendable {
    public let configuration: RedisConfiguration
    /// The protocol agreed in the handshake (``RedisConfiguration/ProtocolVersion/resp2`` when the server refused `HELLO 3`).
    public let protocolVersion: RedisConfiguration.ProtocolVersion
    /// A process-wide number, also in this connection's log metadata as `redis.connection`.
    public let id: Int
    let channel: any Channel
    let logger: Logger
    private let status: ConnectionStatus

    private init(
        configuration: RedisConfiguration,
        protocolVersion: RedisConfiguration.ProtocolVersion,
        id: Int,
        channel: any Channel,
        status: ConnectionStatus,
        logger: Logger
    ) {
        self.configuration = configuration
        self.protocolVersion = protocolVersion
        self.id = id
        self.channel = channel
        self.status = status
        self.logger = logger
    }

    /// Opens a connection and runs the handshake: `HELLO 3` (with `AUTH` and `SETNAME`) when RESP3 is
    /// asked for, falling back to RESP2 when the server refuses it; `AUTH` and `CLIENT SETNAME` on RESP2;
    /// then `SELECT` when the database is not 0.
    ///
    /// - Throws: ``RedisError/connectionFailed(_:)`` when the TCP connection or the handshake fails
    ///   (the message carries the server's error, such as `WRONGPASS ...`).
    public static func connect(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "chorus.redis")
    ) async throws(RedisError) -> RedisConnection {
        let id = connectionCounter.wrappingAdd(1, ordering: .relaxed).newValue
        var logger = logger
        logger[metadataKey: "redis.connection"] = "\(id)"
        let handlerLogger = logger
        let limits = configuration.parserLimits
        let status = ConnectionStatus()
        let channel: any Channel
        do {
            channel = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            RedisChannelHandler(parserLimits: limits, status: status, logger: handlerLogger)
                        )
                    }
                }
                .connect(host: configuration.host, port: configuration.port)
                .get()
        } catch {
            throw .connectionFailed("\(configuration.host):\(configuration.port): \(error)")
        }

        let version: RedisConfiguration.ProtocolVersion
        do {
            version = try await Self.handshake(on: channel, configuration: configuration)
        } catch {
            channel.close(promise: nil)
            switch error {
            case .server(let message): throw .connectionFailed("handshake rejected: \(message)")
            case .timeout: throw .connectionFailed("handshake timed out")
            case .connectionFailed: throw error
            default: throw .connectionFailed("handshake failed: \(error)")
            }
        }
        logger.debug(
            "Connected to Redis",
            metadata: ["redis.address": "\(configuration.host):\(configuration.port)", "redis.protocol": "\(version)"]
        )
        return RedisConnection(
            configuration: configuration,
            protocolVersion: version,
            id: id,
            channel: channel,
            status: status,
            logger: logger
        )
    }

    private static func handshake(
        on channel: any Channel,
        configuration: RedisConfiguration
    ) async throws(RedisError) -> RedisConfiguration.ProtocolVersion {
        let timeout = TimeAmount(configuration.commandTimeout)
        func run(_ command: RedisCommand) async throws(RedisError) {
            let reply: RESPValue
            do {
                reply = try await Self.execute([command], on: channel, timeout: timeout)[0]
            } catch is CommandNotSent {
                throw .connectionClosed
            } catch let error as RedisError {
                throw error
            } catch {
                throw .connectionFailed("cancelled during the handshake")
            }
            if case .error(let message) = reply { throw .server(message) }
        }

        var version = RedisConfiguration.ProtocolVersion.resp2
        if configuration.protocolVersion == .resp3 {
            var hello: [RedisArgument] = ["HELLO", "3"]
            if let password = configuration.password {
                hello += ["AUTH", .string(configuration.username ?? "default"), .string(password)]
            }
            if let name = configuration.clientName {
                hello += ["SETNAME", .string(name)]
            }
            do {
                try await run(RedisCommand(hello))
                version = .resp3
            } catch .server(let message) where message.hasPrefix("NOPROTO") || message.lowercased().contains("unknown command") {
                version = .resp2  // an old server or a proxy without HELLO: carry on in RESP2
            }
        }
        if version == .resp2 {
            if let password = configuration.password {
                if let username = configuration.username {
                    try await run(["AUTH", .string(username), .string(password)])
                } else {
                    try await run(["AUTH", .string(password)])
                }
            }
            if let name = configuration.clientName {
                try await run(["CLIENT", "SETNAME", .string(name)])
            }
        }
        if configuration.database != 0 {
            try await run(["SELECT", .int(configuration.database)])
        }
        return version
    }

    public var defaultCommandTimeout: Duration { self.configuration.commandTimeout }

    /// Whether the connection is open. A closed connection never opens again.
    public var isConnected: Bool { self.status.isOpen && self.channel.isActive }

    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration?, blocking: Bool) async throws -> RESPValue {
        do {
            return try await self.sendUnlessClosing(command, timeout: timeout)
        } catch is CommandNotSent {
            throw RedisError.connectionClosed
        }
    }

    @discardableResult
    public func pipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPValue] {
        do {
            return try await self.pipelineUnlessClosing(commands, timeout: timeout)
        } catch is CommandNotSent {
            throw RedisError.connectionClosed
        }
    }

    /// ``send(_:timeout:blocking:)``, throwing ``CommandNotSent`` when the connection refused the command unsent.
    func sendUnlessClosing(_ command: RedisCommand, timeout: Duration?) async throws -> RESPValue {
        let reply = try await Self.execute(
            [command],
            on: self.channel,
            timeout: TimeAmount(timeout ?? self.configuration.commandTimeout)
        )[0]
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// ``pipeline(_:timeout:)``, throwing ``CommandNotSent`` when the connection refused the commands unsent.
    func pipelineUnlessClosing(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        return try await Self.execute(commands, on: self.channel, timeout: TimeAmount(timeout ?? self.configuration.commandTimeout))
    }

    /// Closes the connection; commands in flight fail with ``RedisError/connectionClosed``.
    public func close() async {
        self.channel.close(promise: nil)
        try? await self.channel.closeFuture.get()
    }

    /// Starts closing without waiting.
    func closeNow() {
        self.channel.close(promise: nil)
    }

    /// Returns when the connection has closed, for whatever reason.
    public func waitUntilClosed() async {
        try? await self.channel.closeFuture.get()
    }

    private static func execute(_ commands: [RedisCommand], on channel: any Channel, timeout: TimeAmount?) async throws -> [RESPValue] {
        try Task.checkCancellation()
        let eventLoop = channel.eventLoop
        let promises = commands.map { _ in eventLoop.makePromise(of: RESPValue.self) }
        let request = RedisRequest(commands: commands, promises: promises, deadline: timeout.map { .now() + $0 })
        channel.writeAndFlush(request).whenFailure { error in
            // Refused by a closing handler, or by a channel already closed: nothing was written.
            // Anything else (a socket error mid-write) leaves the outcome unknown.
            let notSent = error is CommandNotSent || (error as? ChannelError) == .ioOnClosedChannel
            for promise in promises { promise.fail(notSent ? CommandNotSent() : RedisError.connectionClosed) }
        }
        return try await withTaskCancellationHandler {
            var replies: [RESPValue] = []
            replies.reserveCapacity(promises.count)
            for promise in promises {
                replies.append(try await promise.futureResult.get())
            }
            return replies
        } onCancel: {
            for promise in promises { promise.fail(CancellationError()) }
        }
    }
}

extension RedisConnection: CustomStringConvertible {
    public var description: String {
        "RedisConnection(id: \(self.id), \(self.configuration.host):\(self.configuration.port), \(self.protocolVersion))"
    }
}
