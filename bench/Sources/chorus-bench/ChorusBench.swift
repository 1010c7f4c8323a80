import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

@main
struct ChorusBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus-bench",
        abstract: "HTTP/1.1 load generator for Chorus's benchmarks: open-loop (fixed rate) and closed-loop (saturation), HdrHistogram latencies.",
        subcommands: [Run.self])
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run one load point and print one JSON line (and a readable row on stderr).",
        discussion: """
        Open loop (--rate): request i is due at start + i/rate whether or not earlier ones finished; \
        a request that waits for a free connection counts that wait (no coordinated omission). \
        Closed loop (--connections): each connection sends its next request when the previous ends.
        Kinds: plain (a request; 2xx = success), stream (SSE chat completion: first token, token gaps, \
        tokens counted), task (POST /v1/batches then GET /v1/tasks/{id}/events until `finish`).
        """)

    @Option(help: "Target URL, e.g. http://127.0.0.1:8080/v1/chat/completions.") var url: String
    @Option(help: "plain | stream | task") var kind = "plain"
    @Option(help: "HTTP method (default: POST with a body, GET without).") var method: String?
    @Option(help: "Request body.") var body: String?
    @Option(help: "Read the request body from a file.") var bodyFile: String?
    @Option(name: .customLong("header"), help: "A request header `Name: value` (repeatable).") var headers: [String] = []
    @Option(help: "Open loop: requests (or tasks, or streams) started per second.") var rate: Double?
    @Option(help: "Closed loop: concurrent connections.") var connections: Int?
    @Option(help: "Measured seconds (after the warm-up).") var duration: Double = 10
    @Option(help: "Warm-up seconds (run, not recorded).") var warmup: Double = 2
    @Option(help: "Send exactly this many requests (no warm-up; ends when all are done).") var count: Int?
    @Option(help: "Open loop: connections opened before the clock starts.") var initialConnections: Int?
    @Option(help: "Most connections at once (open loop grows when the target falls behind).") var maxConnections = 1024
    @Option(help: "Seconds to wait for outstanding work after the last request was due; what is left counts as incomplete.") var grace: Double = 5
    @Option(help: "Tokens each stream or task should deliver (for lost-token accounting).") var expectedTokens = 0
    @Option(help: "Event loop threads (the load is split into this many independent shards).") var threads = 1
    @Option(name: .customLong("pid"), help: "Sample a process's RSS and CPU: name=PID (repeatable).") var pids: [String] = []
    @Option(help: "Scenario name carried into the JSON.") var scenario = "adhoc"
    @Option(help: "Target name carried into the JSON.") var target = "target"
    @Option(help: "Append the JSON line to this file too.") var out: String?

    func validate() throws {
        guard (rate == nil) != (connections == nil) else {
            throw ValidationError("give exactly one of --rate (open loop) or --connections (closed loop)")
        }
        guard ["plain", "stream", "task"].contains(kind) else { throw ValidationError("--kind must be plain, stream or task") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
    }

    func run() async throws {
        guard let parsed = URL(string: url), let host = parsed.host, let port = parsed.port else {
            throw ValidationError("--url needs http://host:port/path")
        }
        let path = parsed.path.isEmpty ? "/" : parsed.path + (parsed.query.map { "?" + $0 } ?? "")
        var bodyBuffer: ByteBuffer?
        if let bodyFile {
            bodyBuffer = ByteBuffer(bytes: Array(try Data(contentsOf: URL(fileURLWithPath: bodyFile))))
        } else if let body {
            bodyBuffer = ByteBuffer(string: body)
        }
        let headerPairs: [(String, String)] = try headers.map { line in
            guard let colon = line.firstIndex(of: ":") else { throw ValidationError("--header needs `Name: value`, got `\(line)`") }
            return (String(line[..<colon]).trimmingCharacters(in: .whitespaces), String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces))
        }
        var requestHeaders = headerPairs
        if bodyBuffer != nil && !headerPairs.contains(where: { $0.0.lowercased() == "content-type" }) {
            requestHeaders.append(("Content-Type", "application/json"))
        }
        let httpMethod: HTTPMethod = .init(rawValue: (method ?? (bodyBuffer == nil ? "GET" : "POST")).uppercased())
        let template = RequestTemplate(method: httpMethod, path: path, host: host, port: port, headers: requestHeaders, body: bodyBuffer)
        let workload: Workload
        switch kind {
        case "stream":
            workload = .stream(template, expectedTokens: expectedTokens)
        case "task":
            let eventHeaders = headerPairs.filter { $0.0.lowercased() != "content-type" } + [("Accept", "text/event-stream")]
            workload = .task(submit: template, eventsHeaders: eventHeaders, host: host, port: port, expectedTokens: expectedTokens)
        default:
            workload = .plain(template)
        }

        let samplers = try pids.map { spec -> ProcessSampler in
            let parts = spec.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let pid = Int32(parts[1]) else { throw ValidationError("--pid needs name=PID, got `\(spec)`") }
            return ProcessSampler(name: String(parts[0]), pid: pid)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let loops = (0..<threads).map { _ in group.next() }
        var drivers: [Driver] = []
        for (index, loop) in loops.enumerated() {
            func share(_ total: Int) -> Int { total / threads + (index < total % threads ? 1 : 0) }
            let mode: LoadMode
            if let rate { mode = .open(rate: rate / Double(threads)) } else { mode = .closed(connections: share(connections!)) }
            let maxConnections = max(1, share(self.maxConnections))
            let defaultInitial = rate.map { min(max(8, Int($0 / 50)), 256) } ?? 0
            let settings = DriverSettings(
                host: host, port: port, mode: mode, workload: workload,
                initialConnections: min(maxConnections, max(1, share(initialConnections ?? defaultInitial))),
                maxConnections: maxConnections,
                warmupNanoseconds: UInt64(warmup * 1e9), durationNanoseconds: UInt64(duration * 1e9),
                count: count.map(share), graceNanoseconds: UInt64(grace * 1e9))
            drivers.append(Driver(loop: loop, settings: settings))
        }
        let sampleLoop = group.next()
        for sampler in samplers { sampleLoop.execute { sampler.start(on: sampleLoop) } }
        let started = nowNanoseconds()
        let futures = drivers.map { $0.run() }
        var recorder = Recorder()
        for future in futures {
            recorder.merge(try await future.get())
        }
        let elapsed = Double(nowNanoseconds() - started) / 1e9
        for sampler in samplers {
            try await sampleLoop.submit { sampler.stop() }.get()
        }
        try await group.shutdownGracefully()

        // Throughput: measured completions over the measured window; with --count, over the whole run.
        let window = count == nil ? duration : elapsed
        var result: [String: Any] = [
            "scenario": scenario, "target": target, "kind": kind, "url": url,
            "mode": rate == nil ? "closed" : "open",
            "duration_s": (window * 1000).rounded() / 1000,
            "ok": recorder.ok, "errors": recorder.errors, "incomplete": recorder.incomplete,
            // Served rate: successes completed inside the measured window (with --count: all, over the run).
            "achieved_rps": ((Double(count == nil ? recorder.completedInWindow : recorder.ok) / window) * 10).rounded() / 10,
            "latency": recorder.latency.summary,
            "status_counts": Dictionary(uniqueKeysWithValues: recorder.statusCounts.map { (String($0.key), $0.value) }),
            "connections_opened": recorder.connectionsOpened,
            "peak_in_flight": recorder.peakInFlight,
            "threads": threads,
            "time": ISO8601DateFormatter().string(from: Date()),
        ]
        if let rate { result["offered_rps"] = rate }
        if let connections { result["connections"] = connections }
        if let count { result["count"] = count }
        if !recorder.errorSamples.isEmpty { result["error_samples"] = recorder.errorSamples }
        if kind != "plain" {
            result["first_token"] = recorder.firstToken.summary
            result["token_gap"] = recorder.tokenGap.summary
            if recorder.accepted.totalCount > 0 { result["accepted"] = recorder.accepted.summary }
            result["tokens"] = [
                "received": recorder.tokensReceived, "expected": recorder.tokensExpected,
                "lost": recorder.tokensExpected - recorder.tokensReceived, "streams_short": recorder.streamsShort,
            ]
        }
        if !samplers.isEmpty {
            var processes: [String: Any] = [:]
            for sampler in samplers { processes[sampler.name] = sampler.summary(streams: count ?? 0) }
            result["processes"] = processes
        }
        let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        var line = json
        line.append(UInt8(ascii: "\n"))
        FileHandle.standardOutput.write(line)
        if let out {
            if !FileManager.default.fileExists(atPath: out) { _ = FileManager.default.createFile(atPath: out, contents: nil) }
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            try handle.seekToEnd()
            try handle.write(contentsOf: line)
            try handle.close()
        }
        FileHandle.standardError.write(Data(readableRow(recorder, window: window).utf8))
    }

    private func readableRow(_ r: Recorder, window: Double) -> String {
        func ms(_ micros: UInt64) -> String { String(format: "%.3f", Double(micros) / 1000) }
        let offered = rate.map { String(format: "%.0f/s", $0) } ?? "c=\(connections!)"
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        let served = Double(count == nil ? r.completedInWindow : r.ok) / window
        var row = String(format: "%@ %@ %@ achieved %9.1f/s  ok %7d  err %5d  p50 %9@ ms  p99 %9@ ms  p99.9 %9@ ms",
                         pad(scenario, 14) as NSString, pad(target, 16) as NSString, pad(offered, 8) as NSString, served, r.ok, r.errors,
                         ms(r.latency.totalCount > 0 ? r.latency.valueAtPercentile(50) : 0) as NSString,
                         ms(r.latency.totalCount > 0 ? r.latency.valueAtPercentile(99) : 0) as NSString,
                         ms(r.latency.totalCount > 0 ? r.latency.valueAtPercentile(99.9) : 0) as NSString)
        if kind != "plain" && r.firstToken.totalCount > 0 {
            row += String(format: "  first-token p50 %@ p99 %@ ms  gap mean %.3f ms  tokens %d/%d",
                          ms(r.firstToken.valueAtPercentile(50)) as NSString, ms(r.firstToken.valueAtPercentile(99)) as NSString,
                          r.tokenGap.totalCount > 0 ? r.tokenGap.mean / 1000 : 0, r.tokensReceived, r.tokensExpected)
        }
        if r.accepted.totalCount > 0 {
            row += "  accepted p50 \(ms(r.accepted.valueAtPercentile(50))) p99 \(ms(r.accepted.valueAtPercentile(99))) ms"
        }
        if !r.errorSamples.isEmpty { row += "  errors: \(r.errorSamples.joined(separator: " | "))" }
        return row + "\n"
    }
}
