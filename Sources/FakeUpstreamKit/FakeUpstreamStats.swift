import NIOCore

/// Counters and a request log shared by the fake upstream's routes, readable by tests
/// in-process or over HTTP (`GET /_fake/stats`, `GET /_fake/requests`, `POST /_fake/reset`).
public actor FakeUpstreamStats {
    /// A point-in-time copy of the counters. Encodes with the snake_case keys served by
    /// `GET /_fake/stats`.
    public struct Snapshot: Sendable, Equatable, Codable {
        /// Chat completion requests received (streamed or not, including rejected ones).
        public var requests: Int
        /// Streamed responses whose body began.
        public var streamsStarted: Int
        /// Streams the server finished writing (including those ended by `error_after`).
        public var streamsCompleted: Int
        /// Streams the client went away from before the server finished.
        public var streamsAbortedByClient: Int
        /// Streams the server cut on purpose (`disconnect_after`).
        public var streamsDisconnectedByServer: Int
        /// Streams in progress now.
        public var activeStreams: Int

        public init(
            requests: Int = 0,
            streamsStarted: Int = 0,
            streamsCompleted: Int = 0,
            streamsAbortedByClient: Int = 0,
            streamsDisconnectedByServer: Int = 0,
            activeStreams: Int = 0
        ) {
            self.requests = requests
            self.streamsStarted = streamsStarted
            self.streamsCompleted = streamsCompleted
            self.streamsAbortedByClient = streamsAbortedByClient
            self.streamsDisconnectedByServer = streamsDisconnectedByServer
            self.activeStreams = activeStreams
        }

        enum CodingKeys: String, CodingKey {
            case requests
            case streamsStarted = "streams_started"
            case streamsCompleted = "streams_completed"
            case streamsAbortedByClient = "streams_aborted_by_client"
            case streamsDisconnectedByServer = "streams_disconnected_by_server"
            case activeStreams = "active_streams"
        }

        /// The JSON served by `GET /_fake/stats`.
        var json: String {
            """
            {"requests":\(requests),"streams_started":\(streamsStarted),"streams_completed":\(streamsCompleted),\
            "streams_aborted_by_client":\(streamsAbortedByClient),\
            "streams_disconnected_by_server":\(streamsDisconnectedByServer),"active_streams":\(activeStreams)}
            """
        }
    }

    /// How a stream ended.
    enum StreamOutcome: Sendable {
        case completed
        case abortedByClient
        case disconnectedByServer
    }

    /// The most request bodies kept.
    public static let requestLogCapacity = 200

    private var counters = Snapshot()
    /// Ring buffer of raw JSON request bodies; `nextLogSlot` is where the next one goes.
    private var requestLog: [ByteBuffer] = []
    private var nextLogSlot = 0
    /// The `traceparent` headers of the last chat requests that sent one, oldest first.
    private var traceparentLog: [String] = []
    /// Numbers responses (`chatcmpl-fake-N`); never reset, so ids stay unique.
    private var sequence = 0
    /// Requests seen per last user message, for `times=N`.
    private var seen: [String: Int] = [:]

    public init() {}

    public func snapshot() -> Snapshot {
        self.counters
    }

    /// The last `count` request bodies received, oldest first, as raw JSON text.
    public func lastRequestBodies(_ count: Int) -> [String] {
        self.lastRequestBuffers(count).map { String(buffer: $0) }
    }

    /// Clears the counters (except `activeStreams`, which tracks streams still running) and the log.
    public func reset() {
        self.counters = Snapshot(activeStreams: self.counters.activeStreams)
        self.requestLog.removeAll(keepingCapacity: true)
        self.nextLogSlot = 0
        self.traceparentLog.removeAll()
        self.seen.removeAll()
    }

    /// Counts a chat completion request, logs its body if it was valid JSON, and returns its
    /// sequence number.
    func recordRequest(body: ByteBuffer?) -> Int {
        self.counters.requests += 1
        self.sequence += 1
        if let body {
            // A compact copy: the collected body may be a slice of a larger receive buffer.
            var copy = ByteBuffer()
            copy.writeImmutableBuffer(body)
            if self.requestLog.count < Self.requestLogCapacity {
                self.requestLog.append(copy)
            } else {
                self.requestLog[self.nextLogSlot] = copy
            }
            self.nextLogSlot = (self.nextLogSlot + 1) % Self.requestLogCapacity
        }
        return self.sequence
    }

    /// Keeps a chat request's W3C `traceparent` header (the last `requestLogCapacity`).
    func recordTraceparent(_ value: String) {
        if self.traceparentLog.count == Self.requestLogCapacity { self.traceparentLog.removeFirst() }
        self.traceparentLog.append(value)
    }

    /// The last `count` `traceparent` headers received, oldest first.
    public func lastTraceparents(_ count: Int) -> [String] {
        Array(self.traceparentLog.suffix(max(0, count)))
    }

    /// Counts one more request with this last user message and returns how many there were.
    func occurrence(of message: String) -> Int {
        self.seen[message, default: 0] += 1
        return self.seen[message]!
    }

    func streamStarted() {
        self.counters.streamsStarted += 1
        self.counters.activeStreams += 1
    }

    func streamEnded(_ outcome: StreamOutcome) {
        self.counters.activeStreams -= 1
        switch outcome {
        case .completed: self.counters.streamsCompleted += 1
        case .abortedByClient: self.counters.streamsAbortedByClient += 1
        case .disconnectedByServer: self.counters.streamsDisconnectedByServer += 1
        }
    }

    /// The JSON array served by `GET /_fake/requests?last=N`.
    func lastRequestBodiesJSON(_ count: Int) -> ByteBuffer {
        let buffers = self.lastRequestBuffers(count)
        var output = ByteBuffer()
        output.reserveCapacity(buffers.reduce(2) { $0 + $1.readableBytes + 1 })
        output.writeStaticString("[")
        for (index, buffer) in buffers.enumerated() {
            if index > 0 { output.writeStaticString(",") }
            output.writeImmutableBuffer(buffer)
        }
        output.writeStaticString("]")
        return output
    }

    private func lastRequestBuffers(_ count: Int) -> [ByteBuffer] {
        let count = max(0, min(count, self.requestLog.count))
        guard count > 0 else { return [] }
        if self.requestLog.count < Self.requestLogCapacity {
            return Array(self.requestLog.suffix(count))
        }
        // Full ring: the oldest entry is at `nextLogSlot`.
        let ordered = self.requestLog[self.nextLogSlot...] + self.requestLog[..<self.nextLogSlot]
        return Array(ordered.suffix(count))
    }
}
