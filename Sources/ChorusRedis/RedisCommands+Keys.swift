/// Typed helpers for plain keys and counters.
extension RedisCommandSender {
    /// `PING` → `"PONG"`. A short `timeout` makes it a readiness probe.
    @discardableResult
    public func ping(timeout: Duration? = nil) async throws -> String {
        let reply = try await self.send(["PING"], timeout: timeout)
        guard let text = reply.string else { throw RedisError.protocolError("PING: expected a string, got \(reply)") }
        return text
    }

    /// `GET key` → the value as UTF-8 text, or `nil` when the key does not exist.
    public func get(_ key: String) async throws -> String? {
        let reply = try await self.send(["GET", key])
        if reply.isNull { return nil }
        guard let text = reply.string else { throw RedisError.protocolError("GET: expected a bulk string, got \(reply)") }
        return text
    }

    /// `SET key value [NX] [PX ms]` → whether the value was set (`false` only when `onlyIfAbsent` found the key).
    @discardableResult
    public func set(_ key: String, to value: String, onlyIfAbsent: Bool = false, expiresIn: Duration? = nil) async throws -> Bool {
        var arguments: [RedisArgument] = ["SET", .string(key), .string(value)]
        if onlyIfAbsent { arguments.append("NX") }
        if let expiresIn { arguments += ["PX", .int(Self.milliseconds(expiresIn))] }
        let reply = try await self.send(RedisCommand(arguments))
        return !reply.isNull
    }

    /// `DEL key...` → how many keys were removed.
    @discardableResult
    public func del(_ keys: [String]) async throws -> Int {
        guard !keys.isEmpty else { return 0 }
        return try Self.integer(try await self.send(["DEL"] + keys), "DEL")
    }

    /// `DEL key...` → how many keys were removed.
    @discardableResult
    public func del(_ keys: String...) async throws -> Int {
        try await self.del(keys)
    }

    /// `EXPIRE key seconds` → `false` when the key does not exist.
    @discardableResult
    public func expire(_ key: String, seconds: Int) async throws -> Bool {
        try Self.integer(try await self.send(["EXPIRE", key, String(seconds)]), "EXPIRE") == 1
    }

    /// `INCRBY key increment` → the new value.
    @discardableResult
    public func incrby(_ key: String, _ increment: Int = 1) async throws -> Int {
        try Self.integer(try await self.send(["INCRBY", key, String(increment)]), "INCRBY")
    }
}
