/// One Server-Sent Event.
public struct SSEEvent: Sendable, Equatable {
    public var event: String?
    public var data: String
    public var id: String?

    public init(event: String? = nil, data: String, id: String? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }
}

/// An incremental parser for `text/event-stream` (the WHATWG algorithm), fed raw bytes as they arrive.
///
/// Correct for input split at any byte: a chunk may end inside a line, inside a UTF-8 sequence or
/// between the `\r` and `\n` of a line break. Handles `\n`, `\r\n` and `\r` line endings, multi-line
/// `data:` (joined with `\n`), comments (`: keep-alive`), fields without a colon, and a leading BOM.
public struct SSEParser: Sendable {
    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var hasData = false
    private var eventName: String?
    private var lastEventID: String?
    private var pendingID: String?
    private var afterCR = false
    private var atStart = true

    /// The upper bound for one line; a longer line is a protocol error (protects memory).
    public let maxLineLength: Int

    public init(maxLineLength: Int = 8 * 1024 * 1024) {
        self.maxLineLength = maxLineLength
        line.reserveCapacity(256)
    }

    public struct LineTooLong: Error, Sendable {}

    /// Feeds bytes and returns the events they complete.
    public mutating func feed(_ bytes: some Collection<UInt8>) throws -> [SSEEvent] {
        if let events = try bytes.withContiguousStorageIfAvailable({ try feed(buffer: $0) }) {
            return events
        }
        return try Array(bytes).withUnsafeBufferPointer { try feed(buffer: $0) }
    }

    /// Scans for line ends and copies each line's bytes in one piece (this runs for every chunk of
    /// every upstream stream).
    private mutating func feed(buffer: UnsafeBufferPointer<UInt8>) throws -> [SSEEvent] {
        var events: [SSEEvent] = []
        var index = 0
        let count = buffer.count
        while index < count {
            if afterCR {
                afterCR = false
                if buffer[index] == Self.lf {
                    index += 1
                    continue
                }
            }
            var end = index
            while end < count, buffer[end] != Self.lf, buffer[end] != Self.cr { end += 1 }
            if end > index {
                line.append(contentsOf: UnsafeBufferPointer(rebasing: buffer[index..<end]))
                if line.count > maxLineLength { throw LineTooLong() }
            }
            guard end < count else { break }
            if buffer[end] == Self.cr { afterCR = true }
            if let event = endLine() { events.append(event) }
            index = end + 1
        }
        return events
    }

    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")
    private static let dataField = Array("data".utf8)
    private static let eventField = Array("event".utf8)
    private static let idField = Array("id".utf8)

    /// Call at end of input: an event not terminated by a blank line is discarded, per the spec.
    public mutating func finish() {
        line.removeAll(keepingCapacity: true)
        resetEvent()
    }

    private mutating func endLine() -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if atStart {
            atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { return nil }  // comment / keep-alive

        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        if field.elementsEqual(Self.dataField) {
            if hasData { data.append(Self.lf) }
            data.append(contentsOf: value)
            hasData = true
        } else if field.elementsEqual(Self.eventField) {
            eventName = String(decoding: value, as: UTF8.self)
        } else if field.elementsEqual(Self.idField) {
            if !value.contains(0) { pendingID = String(decoding: value, as: UTF8.self) }
        }
        // "retry" and unknown fields are ignored.
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        if let pendingID { lastEventID = pendingID }
        pendingID = nil
        guard hasData else {
            eventName = nil
            return nil
        }
        let event = SSEEvent(event: eventName, data: String(decoding: data, as: UTF8.self), id: lastEventID)
        resetEvent()
        return event
    }

    private mutating func resetEvent() {
        data.removeAll(keepingCapacity: true)
        hasData = false
        eventName = nil
    }
}
