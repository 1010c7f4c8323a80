/// Everything that can go wrong talking to Redis.
///
/// Whether a command may have run matters for commands that are not idempotent (`XADD`, `INCRBY`):
/// - ``connectionFailed(_:)`` and ``clientShutdown``: the command was **never sent**; retrying is safe.
/// - ``timeout`` and ``connectionClosed``: the command was sent and its outcome is unknown.
/// - ``server(_:)``: Redis answered with an error; the command did not take effect (except inside `EVAL`).
public enum RedisError: Error, Sendable, Hashable {
    /// Redis answered with an error reply; the associated value is its full text, e.g. `"ERR unknown command 'FOO'"`
    /// or `"WRONGTYPE Operation against a key holding the wrong kind of value"`.
    case server(String)
    /// No reply arrived within the command's timeout. The connection it was sent on is closed
    /// (replies are matched in order, so it cannot be reused safely) and the client reconnects.
    case timeout
    /// The connection closed while the command was in flight, or was already closed when it was sent.
    case connectionClosed
    /// No connection could be opened (refused, connect timeout, handshake rejected) within the command's timeout.
    case connectionFailed(String)
    /// The bytes from the server are not valid RESP, or a reply does not have the shape a typed helper expects.
    case protocolError(String)
    /// The client has shut down (or never will run again); nothing is sent.
    case clientShutdown

    /// The first word of a server error, such as `"ERR"`, `"WRONGTYPE"`, `"BUSYGROUP"`, `"NOSCRIPT"`.
    public var serverErrorCode: String? {
        guard case .server(let message) = self else { return nil }
        return message.split(separator: " ", maxSplits: 1).first.map(String.init)
    }
}

extension RedisError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .server(let message): "Redis error: \(message)"
        case .timeout: "Redis command timed out"
        case .connectionClosed: "Redis connection closed"
        case .connectionFailed(let reason): "Could not connect to Redis: \(reason)"
        case .protocolError(let reason): "Redis protocol error: \(reason)"
        case .clientShutdown: "Redis client is shut down"
        }
    }
}
