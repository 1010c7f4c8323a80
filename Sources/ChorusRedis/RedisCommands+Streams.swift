/// Typed helpers for the stream commands Chorus's queue and event streams use.
///
/// Helpers that take a `block` time are blocking commands: on ``RedisClient`` they run on a
/// dedicated connection, and their timeout is the block time plus ``RedisCommandSender/defaultCommandTimeout``
/// (a `block` of zero, which waits forever, gets no practical timeout).
extension RedisCommandSender {
    /// `XADD key [MAXLEN ~|= n] id field value ...` → the id of the new entry.
    ///
    /// - Parameters:
    ///   - id: `"*"` lets Redis choose.
    ///   - maxLength: Trims the stream to about (`approximateTrim`) or exactly this many entries.
    @discardableResult
    public func xadd(
        _ key: String,
        id: String = "*",
        fields: [(name: String, value: String)],
        maxLength: Int? = nil,
        approximateTrim: Bool = true
    ) async throws -> String {
        precondition(!fields.isEmpty, "XADD needs at least one field")
        var arguments: [RedisArgument] = ["XADD", .string(key)]
        if let maxLength {
            arguments += ["MAXLEN", approximateTrim ? "~" : "=", .int(maxLength)]
        }
        arguments.append(.string(id))
        for (name, value) in fields {
            arguments += [.string(name), .string(value)]
        }
        let reply = try await self.send(RedisCommand(arguments))
        guard let newID = reply.string else { throw RedisError.protocolError("XADD: expected an id, got \(reply)") }
        return newID
    }

    /// `XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS key... id...` for several streams.
    ///
    /// - Parameters:
    ///   - id: `">"` for entries never delivered to the group; `"0"` (or an id) re-reads this consumer's pending entries.
    ///   - block: Wait up to this long for entries; `nil` returns at once, zero waits forever.
    /// - Returns: Streams with entries; empty when the block time passed without any.
    public func xreadgroup(
        group: String,
        consumer: String,
        keys: [String],
        id: String = ">",
        count: Int? = nil,
        block: Duration? = nil,
        noAck: Bool = false
    ) async throws -> [StreamReadResult] {
        precondition(!keys.isEmpty, "XREADGROUP needs at least one stream")
        var arguments: [RedisArgument] = ["XREADGROUP", "GROUP", .string(group), .string(consumer)]
        if let count { arguments += ["COUNT", .int(count)] }
        if let block { arguments += ["BLOCK", .int(Self.milliseconds(block))] }
        if noAck { arguments.append("NOACK") }
        arguments.append("STREAMS")
        arguments += keys.map(RedisArgument.string)
        arguments += keys.map { _ in RedisArgument.string(id) }
        let reply = try await self.send(RedisCommand(arguments), timeout: self.blockingTimeout(block), blocking: block != nil)
        return try StreamReadResult.list(reply: reply)
    }

    /// `XREADGROUP` for one stream → its entries (empty when none arrived within `block`).
    public func xreadgroup(
        group: String,
        consumer: String,
        key: String,
        id: String = ">",
        count: Int? = nil,
        block: Duration? = nil,
        noAck: Bool = false
    ) async throws -> [StreamEntry] {
        let results = try await self.xreadgroup(
            group: group, consumer: consumer, keys: [key], id: id, count: count, block: block, noAck: noAck
        )
        return results.first { $0.key == key }?.entries ?? []
    }

    /// `XREAD [COUNT n] [BLOCK ms] STREAMS key... id...`: entries after each given id (`"$"`: only new ones).
    public func xread(
        streams: [(key: String, after: String)],
        count: Int? = nil,
        block: Duration? = nil
    ) async throws -> [StreamReadResult] {
        precondition(!streams.isEmpty, "XREAD needs at least one stream")
        var arguments: [RedisArgument] = ["XREAD"]
        if let count { arguments += ["COUNT", .int(count)] }
        if let block { arguments += ["BLOCK", .int(Self.milliseconds(block))] }
        arguments.append("STREAMS")
        arguments += streams.map { .string($0.key) }
        arguments += streams.map { .string($0.after) }
        let reply = try await self.send(RedisCommand(arguments), timeout: self.blockingTimeout(block), blocking: block != nil)
        return try StreamReadResult.list(reply: reply)
    }

    /// `XREAD` for one stream → entries after `after` (for following a task's event stream).
    public func xread(key: String, after: String, count: Int? = nil, block: Duration? = nil) async throws -> [StreamEntry] {
        let results = try await self.xread(streams: [(key, after)], count: count, block: block)
        return results.first { $0.key == key }?.entries ?? []
    }

    /// `XRANGE key start end [COUNT n]`. `start`/`end` accept `-`, `+`, ids, and `(id` for exclusive bounds.
    public func xrange(_ key: String, start: String = "-", end: String = "+", count: Int? = nil) async throws -> [StreamEntry] {
        var arguments: [RedisArgument] = ["XRANGE", .string(key), .string(start), .string(end)]
        if let count { arguments += ["COUNT", .int(count)] }
        return try StreamEntry.list(reply: try await self.send(RedisCommand(arguments)))
    }

    /// `XACK key group id...` → how many were acknowledged.
    @discardableResult
    public func xack(_ key: String, group: String, ids: [String]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        let reply = try await self.send(RedisCommand(["XACK", .string(key), .string(group)] + ids.map(RedisArgument.string)))
        return try Self.integer(reply, "XACK")
    }

    /// `XGROUP CREATE key group startID [MKSTREAM]` → `true` when created, `false` when the group already existed (`BUSYGROUP`).
    ///
    /// - Parameter startID: `"$"` delivers only entries added from now on; `"0"` delivers the whole stream.
    @discardableResult
    public func xgroupCreate(_ key: String, group: String, startID: String = "$", makeStream: Bool = true) async throws -> Bool {
        var arguments: [RedisArgument] = ["XGROUP", "CREATE", .string(key), .string(group), .string(startID)]
        if makeStream { arguments.append("MKSTREAM") }
        do {
            _ = try await self.send(RedisCommand(arguments))
            return true
        } catch let error as RedisError where error.serverErrorCode == "BUSYGROUP" {
            return false
        }
    }

    /// `XAUTOCLAIM key group consumer min-idle-ms start [COUNT n]`: takes over entries pending longer than `minIdle`.
    public func xautoclaim(
        _ key: String,
        group: String,
        consumer: String,
        minIdle: Duration,
        start: String = "0-0",
        count: Int? = nil
    ) async throws -> StreamAutoClaimResult {
        var arguments: [RedisArgument] = [
            "XAUTOCLAIM", .string(key), .string(group), .string(consumer), .int(Self.milliseconds(minIdle)), .string(start),
        ]
        if let count { arguments += ["COUNT", .int(count)] }
        let reply = try await self.send(RedisCommand(arguments))
        guard let parts = reply.array, parts.count >= 2, let next = parts[0].string else {
            throw RedisError.protocolError("XAUTOCLAIM: expected [next, entries, deleted], got \(reply)")
        }
        // Redis 6.2 lists deleted entries as [id, null]; Redis 7 leaves them out and reports them separately.
        let all = try StreamEntry.list(reply: parts[1])
        var deleted = parts.count > 2 ? (parts[2].array ?? []).compactMap(\.string) : []
        var entries: [StreamEntry] = []
        entries.reserveCapacity(all.count)
        for entry in all {
            if entry.fields.isEmpty { deleted.append(entry.id) } else { entries.append(entry) }
        }
        return StreamAutoClaimResult(nextStart: next, entries: entries, deletedIDs: deleted)
    }

    /// `XPENDING key group`: how many entries are pending, their id range and count per consumer.
    public func xpending(_ key: String, group: String) async throws -> StreamPendingSummary {
        let reply = try await self.send(["XPENDING", key, group])
        guard let parts = reply.array, parts.count == 4, let count = parts[0].int else {
            throw RedisError.protocolError("XPENDING: expected [count, smallest, greatest, consumers], got \(reply)")
        }
        var consumers: [String: Int] = [:]
        for consumer in parts[3].array ?? [] {
            guard let pair = consumer.array, pair.count == 2, let name = pair[0].string, let pending = pair[1].int else {
                throw RedisError.protocolError("XPENDING: expected [consumer, count], got \(consumer)")
            }
            consumers[name] = pending
        }
        return StreamPendingSummary(count: count, smallestID: parts[1].string, greatestID: parts[2].string, consumers: consumers)
    }

    /// `XPENDING key group [IDLE ms] start end count [consumer]`: the pending entries with owner, idle time and delivery count.
    public func xpending(
        _ key: String,
        group: String,
        start: String = "-",
        end: String = "+",
        count: Int,
        consumer: String? = nil,
        minIdle: Duration? = nil
    ) async throws -> [StreamPendingEntry] {
        var arguments: [RedisArgument] = ["XPENDING", .string(key), .string(group)]
        if let minIdle { arguments += ["IDLE", .int(Self.milliseconds(minIdle))] }
        arguments += [.string(start), .string(end), .int(count)]
        if let consumer { arguments.append(.string(consumer)) }
        let reply = try await self.send(RedisCommand(arguments))
        guard let lines = reply.array else { throw RedisError.protocolError("XPENDING: expected an array, got \(reply)") }
        return try lines.map { line throws(RedisError) in
            guard let parts = line.array, parts.count == 4, let id = parts[0].string, let owner = parts[1].string,
                let idle = parts[2].int, let deliveries = parts[3].int
            else {
                throw .protocolError("XPENDING: expected [id, consumer, idle, deliveries], got \(line)")
            }
            return StreamPendingEntry(id: id, consumer: owner, idle: .milliseconds(idle), deliveryCount: deliveries)
        }
    }

    /// `XINFO GROUPS key`: every consumer group with its pending count, lag and read counter.
    public func xinfoGroups(_ key: String) async throws -> [StreamGroupInfo] {
        let reply = try await self.send(["XINFO", "GROUPS", key])
        guard let groups = reply.array else { throw RedisError.protocolError("XINFO GROUPS: expected an array, got \(reply)") }
        return try groups.map { group throws(RedisError) in
            guard let fields = group.dictionary, let name = fields["name"]?.string,
                let consumers = fields["consumers"]?.int, let pending = fields["pending"]?.int,
                let lastDelivered = fields["last-delivered-id"]?.string
            else {
                throw .protocolError("XINFO GROUPS: unexpected group description \(group)")
            }
            return StreamGroupInfo(
                name: name,
                consumers: consumers,
                pending: pending,
                lastDeliveredID: lastDelivered,
                entriesRead: fields["entries-read"]?.int,
                lag: fields["lag"]?.int
            )
        }
    }

    /// `XLEN key` → number of entries (0 when the stream does not exist).
    public func xlen(_ key: String) async throws -> Int {
        try Self.integer(try await self.send(["XLEN", key]), "XLEN")
    }

    /// `XDEL key id...` → how many entries were deleted.
    @discardableResult
    public func xdel(_ key: String, ids: [String]) async throws -> Int {
        guard !ids.isEmpty else { return 0 }
        return try Self.integer(try await self.send(RedisCommand(["XDEL", key] + ids)), "XDEL")
    }

    // MARK: Helpers

    static func milliseconds(_ duration: Duration) -> Int {
        let (seconds, attoseconds) = duration.components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    static func integer(_ reply: RESPValue, _ command: String) throws(RedisError) -> Int {
        guard case .integer(let value) = reply else {
            throw .protocolError("\(command): expected an integer, got \(reply.kindDescription)")
        }
        return value
    }

    /// Timeout for a command that blocks up to `block` on the server.
    func blockingTimeout(_ block: Duration?) -> Duration? {
        guard let block else { return nil }
        if block == .zero { return practicallyForever }
        return block + self.defaultCommandTimeout
    }
}
