import Hummingbird
import NIOCore

/// Writes one streamed chat completion as server-sent events, with the faults its options ask for.
///
/// The answer streams one chunk per token (`delta.content`, or `delta.refusal` for a refusal)
/// or, for tool calls, one chunk per call header and per arguments fragment. Pacing and the
/// "after K tokens" faults count these answer chunks, tool-call headers included.
///
/// Events are gathered in a pending buffer and written together; the buffer is flushed before
/// every wait (token pacing, stalls, split events) and at the end, so a stream with no delays
/// goes out in a single write while a paced stream sends each token as it is "generated".
struct ChatStream {
    /// How the server ended the stream.
    enum Ending: Sendable {
        /// The body was finished: normally, or after an `error_after` event.
        case finished
        /// `disconnect_after` fired: the caller must close the connection without finishing the body.
        case disconnect
    }

    let plan: CompletionPlan
    let options: FakeOptions
    /// The events in the API's shape: OpenAI's chunks, or Gemini's responses.
    private let chunks: any StreamEventRenderer
    private var pacer: TokenPacer
    private var pending = ByteBuffer()
    private var eventCount = 0

    /// Flush once this much is pending even without a wait.
    private static let flushThreshold = 16 * 1024

    init(plan: CompletionPlan, options: FakeOptions, tokensPerSecond: Double, includeUsage: Bool) {
        self.init(plan: plan, options: options, tokensPerSecond: tokensPerSecond, events: ChunkTemplate(plan: plan, includeUsage: includeUsage))
    }

    init(plan: CompletionPlan, options: FakeOptions, tokensPerSecond: Double, events: any StreamEventRenderer) {
        self.plan = plan
        self.options = options
        self.chunks = events
        self.pacer = TokenPacer(tokensPerSecond: tokensPerSecond)
    }

    mutating func write(to writer: inout any ResponseBodyWriter) async throws -> Ending {
        self.pacer.restart()
        if self.options.comments {
            self.pending.writeStaticString(": keep-alive\n\n")
        }
        if let opening = self.chunks.openingEvent {
            try await self.send(opening, to: &writer)
        }

        if self.plan.thinkTags {
            // Split the tags across events so clients must reassemble them.
            try await self.send(self.chunks.contentEvent("<thi"), to: &writer)
            try await self.send(self.chunks.contentEvent("nk>"), to: &writer)
        }
        for index in 0..<self.plan.reasoningCount {
            try await self.pace(&writer)
            let token = CompletionPlan.reasoningToken(index)
            let event = self.plan.thinkTags ? self.chunks.contentEvent(token) : self.chunks.reasoningEvent(token)
            try await self.send(event, to: &writer)
        }
        if self.plan.thinkTags {
            try await self.send(self.chunks.contentEvent("</th"), to: &writer)
            try await self.send(self.chunks.contentEvent("ink>"), to: &writer)
        }

        let answerCount = self.plan.answer.streamedCount
        for index in 0...answerCount {
            if let ending = try await self.runFaults(afterTokens: index, isLast: index == answerCount, writer: &writer) {
                return ending
            }
            guard index < answerCount else { break }
            try await self.pace(&writer)
            if let event = self.chunks.answerEvent(index) {
                try await self.send(event, to: &writer)
            }
        }

        for event in self.chunks.closingEvents {
            try await self.send(event, to: &writer)
        }
        try await self.flush(&writer)
        try await writer.finish(nil)
        return .finished
    }

    /// Faults that fire once `tokens` answer tokens have been sent. A position beyond the
    /// answer fires after the last token.
    private mutating func runFaults(
        afterTokens tokens: Int,
        isLast: Bool,
        writer: inout any ResponseBodyWriter
    ) async throws -> Ending? {
        func fires(_ position: Int?) -> Bool {
            guard let position else { return false }
            return position == tokens || (isLast && position > tokens)
        }
        if fires(self.options.stallAfter), self.options.stall > 0 {
            try await self.stall(seconds: self.options.stall, writer: &writer)
        }
        if fires(self.options.malformedAfter) {
            self.pending.writeStaticString("data: {\"id\": broken\n\n")
        }
        if fires(self.options.errorAfter) {
            self.pending.writeString(self.chunks.errorEvent(message: "The fake upstream failed after \(tokens) tokens (error_after)."))
            try await self.flush(&writer)
            try await writer.finish(nil)
            return .finished
        }
        if fires(self.options.disconnectAfter) {
            try await self.flush(&writer)
            return .disconnect
        }
        return nil
    }

    /// A mid-stream pause; with `comments=1` a keep-alive comment goes out every second of it.
    private mutating func stall(seconds: Double, writer: inout any ResponseBodyWriter) async throws {
        try await self.flush(&writer)
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: .seconds(seconds))
        if self.options.comments {
            while clock.now.advanced(by: .seconds(1)) < end {
                try await Task.sleep(for: .seconds(1))
                try await writer.write(ByteBuffer(staticString: ": keep-alive\n\n"))
            }
        }
        try await Task.sleep(until: end, clock: clock)
        self.pacer.restart()
    }

    /// Waits until the next token is due, when a rate is set.
    private mutating func pace(_ writer: inout any ResponseBodyWriter) async throws {
        guard let deadline = self.pacer.nextDeadline() else { return }
        try await self.flush(&writer)
        try await Task.sleep(until: deadline, clock: .continuous)
    }

    /// Queues one event. With `comments=1`, every third event is split across two writes a
    /// moment apart and a keep-alive comment follows every second event.
    private mutating func send(_ event: String, to writer: inout any ResponseBodyWriter) async throws {
        self.eventCount += 1
        if self.options.comments && self.eventCount % 3 == 0 {
            let bytes = event.utf8
            let middle = bytes.index(bytes.startIndex, offsetBy: bytes.count / 2)
            self.pending.writeBytes(bytes[..<middle])
            try await self.flush(&writer)
            try await Task.sleep(for: .milliseconds(2))
            self.pending.writeBytes(bytes[middle...])
        } else {
            self.pending.writeString(event)
        }
        if self.options.comments && self.eventCount % 2 == 0 {
            self.pending.writeStaticString(": keep-alive\n\n")
        }
        if self.pending.readableBytes >= Self.flushThreshold {
            try await self.flush(&writer)
        }
    }

    private mutating func flush(_ writer: inout any ResponseBodyWriter) async throws {
        guard self.pending.readableBytes > 0 else { return }
        let buffer = self.pending
        self.pending = ByteBuffer()
        try await writer.write(buffer)
    }
}

/// Spaces tokens `1 / rate` seconds apart on a fixed schedule (no drift from write time).
struct TokenPacer {
    private let interval: Duration?
    private var start = ContinuousClock.now
    private var emitted = 0

    init(tokensPerSecond: Double) {
        self.interval = tokensPerSecond > 0 ? .seconds(1 / tokensPerSecond) : nil
    }

    /// Starts the schedule again from now (after a stall).
    mutating func restart() {
        self.start = ContinuousClock.now
        self.emitted = 0
    }

    /// When the next token is due, or `nil` when tokens are not paced.
    mutating func nextDeadline() -> ContinuousClock.Instant? {
        guard let interval = self.interval else { return nil }
        self.emitted += 1
        return self.start.advanced(by: interval * self.emitted)
    }
}
