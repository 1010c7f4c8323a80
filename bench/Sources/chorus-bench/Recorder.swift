import Histogram
import NIOCore

/// Monotonic nanoseconds (CLOCK_MONOTONIC through NIO).
@inline(__always) func nowNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// Microsecond histograms up to 10 minutes, three significant digits.
func makeHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
}

extension Histogram where Count == UInt64 {
    /// Records nanoseconds as microseconds (at least 1 µs), clamped to the trackable range.
    mutating func recordNanoseconds(_ nanoseconds: UInt64) {
        let micros = Swift.max(1, Swift.min(nanoseconds / 1000, 600_000_000))
        _ = record(micros)
    }

    /// The summary written in results: microseconds.
    var summary: [String: Double] {
        guard totalCount > 0 else { return ["count": 0] }
        return [
            "count": Double(totalCount),
            "mean_us": (mean * 10).rounded() / 10,
            "p50_us": Double(valueAtPercentile(50)),
            "p90_us": Double(valueAtPercentile(90)),
            "p99_us": Double(valueAtPercentile(99)),
            "p999_us": Double(valueAtPercentile(99.9)),
            "max_us": Double(max),
        ]
    }
}

/// What one shard of a run measured. Merged across shards at the end.
struct Recorder: Sendable {
    /// Request latency: from the intended start (open loop) or the send (closed loop) to the end
    /// of the response. For a task: submit to the `finish` event.
    var latency = makeHistogram()
    /// Streams: intended start to the first content token (tasks: submit to the first `answer`).
    var firstToken = makeHistogram()
    /// Tasks: submit to the end of the `202` (the submission alone; `firstToken` minus this is
    /// dispatch: the events request, the worker's claim, the upstream call and the relay).
    var accepted = makeHistogram()
    /// Streams: every gap between two consecutive content tokens as the client saw them.
    var tokenGap = makeHistogram()
    var ok = 0
    /// Successful completions that happened inside the measured window (whenever they were due):
    /// the rate the target actually served, also when it falls behind an open-loop schedule.
    var completedInWindow = 0
    var errors = 0
    /// Requests still queued or running when the run gave up waiting (counted as errors too;
    /// their latency is recorded as "at least" the time they had waited).
    var incomplete = 0
    var statusCounts: [Int: Int] = [:]
    var errorSamples: [String] = []
    var tokensReceived = 0
    var tokensExpected = 0
    var streamsShort = 0
    var peakInFlight = 0
    var connectionsOpened = 0

    mutating func error(_ message: String) {
        errors += 1
        if errorSamples.count < 5 && !errorSamples.contains(message) { errorSamples.append(message) }
    }

    mutating func merge(_ other: Recorder) {
        latency.add(other.latency)
        firstToken.add(other.firstToken)
        accepted.add(other.accepted)
        tokenGap.add(other.tokenGap)
        ok += other.ok
        completedInWindow += other.completedInWindow
        errors += other.errors
        incomplete += other.incomplete
        for (status, count) in other.statusCounts { statusCounts[status, default: 0] += count }
        for sample in other.errorSamples where errorSamples.count < 5 && !errorSamples.contains(sample) { errorSamples.append(sample) }
        tokensReceived += other.tokensReceived
        tokensExpected += other.tokensExpected
        streamsShort += other.streamsShort
        peakInFlight += other.peakInFlight
        connectionsOpened += other.connectionsOpened
    }
}
