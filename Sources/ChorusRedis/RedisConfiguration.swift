/// How to reach Redis and how the client behaves. One value configures both a single
/// ``RedisConnection`` and the pool in ``RedisClient``.
public struct RedisConfiguration: Sendable, Hashable {
    /// Which protocol to speak.
    public enum ProtocolVersion: Sendable, Hashable {
        /// RESP2: no `HELLO`; authenticates with `AUTH`.
        case resp2
        /// RESP3 through `HELLO 3`; when the server refuses `HELLO` (Redis < 6, some proxies) the
        /// connection falls back to RESP2. Typed helpers accept both reply shapes.
        case resp3
    }

    /// Exponential backoff with jitter for reconnecting.
    public struct Backoff: Sendable, Hashable {
        /// Delay before the first retry.
        public var initial: Duration
        /// Ceiling of the delay.
        public var maximum: Duration
        /// Factor applied per failed attempt.
        public var multiplier: Double

        public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(2), multiplier: Double = 2) {
            self.initial = initial
            self.maximum = maximum
            self.multiplier = multiplier
        }

        /// The delay after the `attempt`-th consecutive failure (1-based): the exponential step,
        /// capped at ``maximum``, with "equal jitter" — a random point in its upper half — so that
        /// many clients that lost the same server do not reconnect in lockstep.
        public func delay(afterFailure attempt: Int) -> Duration {
            let maximum = Self.seconds(self.maximum)
            var step = Self.seconds(self.initial)
            var steps = attempt - 1
            while steps > 0, step < maximum, self.multiplier > 1 {
                step *= self.multiplier
                steps -= 1
            }
            step = Swift.min(step, maximum)
            let jittered = step / 2 + Double.random(in: 0...(step / 2))
            return .nanoseconds(Int64((jittered * 1e9).rounded()))
        }

        private static func seconds(_ duration: Duration) -> Double {
            let (seconds, attoseconds) = duration.components
            return Double(seconds) + Double(attoseconds) / 1e18
        }
    }

    public var host: String
    public var port: Int
    /// ACL user name; `nil` with a ``password`` means the `default` user.
    public var username: String?
    public var password: String?
    /// Database selected with `SELECT` after connecting (0 sends nothing).
    public var database: Int
    /// Sent as `CLIENT SETNAME` (through `HELLO ... SETNAME` on RESP3) so `CLIENT LIST` shows who is who.
    public var clientName: String?
    public var protocolVersion: ProtocolVersion
    /// Limit for the TCP connect; the handshake after it is bounded by ``commandTimeout``.
    public var connectTimeout: Duration
    /// Default limit for one command (or one pipeline) from write to reply, and for waiting for a
    /// connection. Blocking helpers (`XREADGROUP ... BLOCK`) add their block time to it.
    public var commandTimeout: Duration
    /// Shared connections in ``RedisClient``: every command is pipelined on one of them, round-robin.
    public var connectionCount: Int
    /// Connections ``RedisClient`` may lease exclusively at once (for blocking commands), beyond ``connectionCount``.
    public var maxDedicatedConnections: Int
    public var reconnectBackoff: Backoff
    public var parserLimits: RESPParser.Limits

    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        clientName: String? = nil,
        protocolVersion: ProtocolVersion = .resp3,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(5),
        connectionCount: Int = 4,
        maxDedicatedConnections: Int = 16,
        reconnectBackoff: Backoff = Backoff(),
        parserLimits: RESPParser.Limits = RESPParser.Limits()
    ) {
        precondition(connectionCount >= 1, "connectionCount must be at least 1")
        precondition(maxDedicatedConnections >= 0, "maxDedicatedConnections must not be negative")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.clientName = clientName
        self.protocolVersion = protocolVersion
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.connectionCount = connectionCount
        self.maxDedicatedConnections = maxDedicatedConnections
        self.reconnectBackoff = reconnectBackoff
        self.parserLimits = parserLimits
    }

    /// Reads `redis://[[user]:password@]host[:port][/database]` (user and password percent-decoded).
    /// Other settings keep their defaults. Returns `nil` for anything else (`rediss://` TLS is not supported).
    public init?(url: String) {
        guard url.hasPrefix("redis://") else { return nil }
        var rest = Substring(url.dropFirst("redis://".count))
        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !path.isEmpty {
                guard let number = Int(path), number >= 0 else { return nil }
                database = number
            }
        }
        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : Self.percentDecoded(user)
                password = Self.percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                password = Self.percentDecoded(credentials)  // redis://secret@host: a bare password, as redis-cli reads it
            }
        }
        var host = String(rest)
        var port = 6379
        if rest.hasPrefix("[") {  // [IPv6]:port
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") {
                guard let number = Int(after.dropFirst()) else { return nil }
                port = number
            } else if !after.isEmpty {
                return nil
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = String(rest[..<colon])
            guard let number = Int(rest[rest.index(after: colon)...]) else { return nil }
            port = number
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        self.init(host: host, port: port, username: username, password: password, database: database)
    }

    private static func percentDecoded(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = text.utf8[...]
        while let byte = utf8.popFirst() {
            if byte == UInt8(ascii: "%"), utf8.count >= 2,
                let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
