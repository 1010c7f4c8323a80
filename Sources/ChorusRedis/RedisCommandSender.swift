/// Something that sends commands to Redis: one ``RedisConnection`` or the pooled ``RedisClient``.
/// The typed helpers (`xadd`, `get`, `eval`, ...) are extensions on this protocol, so they work on both.
public protocol RedisCommandSender: Sendable {
    /// The timeout used when a call passes `timeout: nil`.
    var defaultCommandTimeout: Duration { get }

    /// Sends one command and returns its reply. An error reply is thrown as ``RedisError/server(_:)``.
    ///
    /// - Parameters:
    ///   - timeout: Limit for the reply (and, on ``RedisClient``, for getting a connection first); `nil` means ``defaultCommandTimeout``.
    ///   - blocking: The command may block on the server (`XREADGROUP ... BLOCK`, `BLPOP`). ``RedisClient``
    ///     then runs it on a dedicated connection so it cannot hold up others; a ``RedisConnection`` ignores it.
    @discardableResult
    func send(_ command: RedisCommand, timeout: Duration?, blocking: Bool) async throws -> RESPValue

    /// Sends the commands in one write on one connection and returns their replies in order.
    /// Error replies are returned in place as ``RESPValue/error(_:)``, not thrown.
    @discardableResult
    func pipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPValue]
}

extension RedisCommandSender {
    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration? = nil) async throws -> RESPValue {
        try await self.send(command, timeout: timeout, blocking: false)
    }

    @discardableResult
    public func send(_ arguments: [String], timeout: Duration? = nil) async throws -> RESPValue {
        try await self.send(RedisCommand(arguments), timeout: timeout, blocking: false)
    }

    @discardableResult
    public func send(_ arguments: String...) async throws -> RESPValue {
        try await self.send(RedisCommand(arguments), timeout: nil, blocking: false)
    }

    @discardableResult
    public func pipeline(_ commands: [RedisCommand]) async throws -> [RESPValue] {
        try await self.pipeline(commands, timeout: nil)
    }

    @discardableResult
    public func pipeline(_ commands: [[String]], timeout: Duration? = nil) async throws -> [RESPValue] {
        try await self.pipeline(commands.map(RedisCommand.init), timeout: timeout)
    }
}

/// Timeout for commands that may legitimately wait forever (`BLOCK 0`): about 68 years.
let practicallyForever: Duration = .seconds(Int64(Int32.max))
