/// One entry of a Redis stream.
public struct StreamEntry: Sendable, Equatable, CustomStringConvertible {
    /// The entry id, `<milliseconds>-<sequence>`.
    public var id: String
    /// Field/value pairs in the order they were added. Empty for an entry that was deleted while
    /// pending (`XREADGROUP` with an id other than `>` reports those with no fields).
    public var fields: [(name: String, value: String)]

    public init(id: String, fields: [(name: String, value: String)]) {
        self.id = id
        self.fields = fields
    }

    /// The value of the first field called `name`.
    public subscript(name: String) -> String? {
        self.fields.first { $0.name == name }?.value
    }

    /// The fields as a dictionary (a repeated field keeps its last value).
    public var fieldDictionary: [String: String] {
        Dictionary(self.fields.map { ($0.name, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    public static func == (lhs: StreamEntry, rhs: StreamEntry) -> Bool {
        lhs.id == rhs.id && lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    public var description: String {
        "\(self.id) {" + self.fields.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "}"
    }
}

/// The entries `XREAD`/`XREADGROUP` returned for one stream.
public struct StreamReadResult: Sendable, Equatable {
    public var key: String
    public var entries: [StreamEntry]

    public init(key: String, entries: [StreamEntry]) {
        self.key = key
        self.entries = entries
    }
}

/// The reply of `XAUTOCLAIM` (Redis 7 shape; `deletedIDs` is empty on Redis 6.2).
public struct StreamAutoClaimResult: Sendable, Equatable {
    /// Where the next `XAUTOCLAIM` scan should start; `"0-0"` when the whole pending list was scanned.
    public var nextStart: String
    /// The entries now owned by the claiming consumer, their delivery count incremented.
    public var entries: [StreamEntry]
    /// Pending ids whose entries no longer exist in the stream; Redis removed them from the pending list.
    public var deletedIDs: [String]
}

/// The summary form of `XPENDING key group`.
public struct StreamPendingSummary: Sendable, Equatable {
    public var count: Int
    public var smallestID: String?
    public var greatestID: String?
    /// Consumers with pending entries and how many each holds.
    public var consumers: [String: Int]
}

/// One line of the extended form of `XPENDING`.
public struct StreamPendingEntry: Sendable, Equatable {
    public var id: String
    public var consumer: String
    /// Time since the entry was last delivered.
    public var idle: Duration
    /// How many times it has been delivered (reads with `>` and claims).
    public var deliveryCount: Int
}

/// One consumer group as `XINFO GROUPS` describes it.
public struct StreamGroupInfo: Sendable, Equatable {
    public var name: String
    public var consumers: Int
    /// Entries delivered and not yet acknowledged.
    public var pending: Int
    public var lastDeliveredID: String
    /// Logical read counter of the group (Redis 7+); `nil` when unknown.
    public var entriesRead: Int?
    /// Entries not yet delivered to the group (Redis 7+); `nil` when Redis cannot tell (after deletions).
    public var lag: Int?
}

// MARK: - Parsing replies

extension StreamEntry {
    /// Parses `[id, [field, value, ...]]`; the fields may be null for a deleted entry.
    init(reply: RESPValue) throws(RedisError) {
        guard let parts = reply.array, parts.count == 2, let id = parts[0].string else {
            throw .protocolError("expected a stream entry [id, fields], got \(reply)")
        }
        self.id = id
        if parts[1].isNull {
            self.fields = []
            return
        }
        guard let flat = parts[1].array, flat.count % 2 == 0 else {
            throw .protocolError("expected stream entry fields as [name, value, ...], got \(parts[1])")
        }
        var fields: [(name: String, value: String)] = []
        fields.reserveCapacity(flat.count / 2)
        for index in stride(from: 0, to: flat.count, by: 2) {
            guard let name = flat[index].string, let value = flat[index + 1].string else {
                throw .protocolError("expected string field and value in a stream entry, got \(flat[index]) \(flat[index + 1])")
            }
            fields.append((name, value))
        }
        self.fields = fields
    }

    /// Parses an array of entries; null is an empty list.
    static func list(reply: RESPValue) throws(RedisError) -> [StreamEntry] {
        if reply.isNull { return [] }
        guard let elements = reply.array else {
            throw .protocolError("expected an array of stream entries, got \(reply.kindDescription)")
        }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(elements.count)
        for element in elements {
            entries.append(try StreamEntry(reply: element))
        }
        return entries
    }
}

extension StreamReadResult {
    /// Parses the reply of `XREAD`/`XREADGROUP`: null (timed out), a RESP3 map `{key: entries}`,
    /// or a RESP2 array `[[key, entries], ...]`.
    static func list(reply: RESPValue) throws(RedisError) -> [StreamReadResult] {
        switch reply {
        case .null:
            return []
        case .map(let pairs):
            var results: [StreamReadResult] = []
            for (key, entries) in pairs {
                guard let key = key.string else { throw .protocolError("expected a stream name, got \(key)") }
                results.append(StreamReadResult(key: key, entries: try StreamEntry.list(reply: entries)))
            }
            return results
        case .array(let streams):
            var results: [StreamReadResult] = []
            for stream in streams {
                guard let parts = stream.array, parts.count == 2, let key = parts[0].string else {
                    throw .protocolError("expected [stream, entries], got \(stream)")
                }
                results.append(StreamReadResult(key: key, entries: try StreamEntry.list(reply: parts[1])))
            }
            return results
        default:
            throw .protocolError("unexpected XREAD reply: \(reply.kindDescription)")
        }
    }
}
