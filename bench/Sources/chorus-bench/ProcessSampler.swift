#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore

/// Reads a process's resident memory, CPU time and open descriptors from /proc (Linux), sampled
/// on a timer. The descriptors tell how many streams a server really held at its peak: a client
/// counts a stream as open while it still waits in the server's accept queue.
final class ProcessSampler: @unchecked Sendable {
    struct Reading {
        var rssKB: Int
        var cpuTicks: Int
        var descriptors: Int
    }

    let name: String
    let pid: Int32
    private(set) var baseline: Reading?
    private(set) var last: Reading?
    private(set) var peakRSSKB = 0
    private(set) var peakDescriptors = 0
    private var task: RepeatedTask?
    private var startedAt: UInt64 = 0
    private var stoppedAt: UInt64 = 0
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    init(name: String, pid: Int32) {
        self.name = name
        self.pid = pid
    }

    static func read(pid: Int32) -> Reading? {
        guard let status = readFile("/proc/\(pid)/status"), let stat = readFile("/proc/\(pid)/stat") else { return nil }
        var rss = 0
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            rss = Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "0") ?? 0
        }
        // Fields after the command name (which may hold spaces): state is field 3; utime 14, stime 15.
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Int(fields[11]), let stime = Int(fields[12]) else { return nil }
        return Reading(rssKB: rss, cpuTicks: utime + stime, descriptors: countEntries("/proc/\(pid)/fd"))
    }

    /// Entries of a directory, without `.` and `..`.
    static func countEntries(_ path: String) -> Int {
        guard let directory = opendir(path) else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let name = entry.pointee.d_name
            let dot = UInt8(ascii: ".")
            let isDots = withUnsafeBytes(of: name) { $0[0] == dot && ($0[1] == 0 || ($0[1] == dot && $0[2] == 0)) }
            if !isDots { count += 1 }
        }
        return count
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func start(on loop: any EventLoop) {
        baseline = Self.read(pid: pid)
        last = baseline
        peakRSSKB = baseline?.rssKB ?? 0
        peakDescriptors = baseline?.descriptors ?? 0
        startedAt = nowNanoseconds()
        task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(200)) { _ in
            self.sample()
        }
    }

    private func sample() {
        guard let reading = Self.read(pid: pid) else { return }
        last = reading
        peakRSSKB = max(peakRSSKB, reading.rssKB)
        peakDescriptors = max(peakDescriptors, reading.descriptors)
    }

    func stop() {
        task?.cancel()
        sample()
        stoppedAt = nowNanoseconds()
    }

    func summary(streams: Int) -> [String: Double] {
        guard let baseline, let last else { return ["pid": Double(pid), "missing": 1] }
        let cpuSeconds = Double(last.cpuTicks - baseline.cpuTicks) / Self.ticksPerSecond
        let wall = Double(stoppedAt - startedAt) / 1e9
        var result: [String: Double] = [
            "pid": Double(pid),
            "rss_baseline_kb": Double(baseline.rssKB),
            "rss_peak_kb": Double(peakRSSKB),
            "rss_end_kb": Double(last.rssKB),
            "descriptors_baseline": Double(baseline.descriptors),
            "descriptors_peak": Double(peakDescriptors),
            "cpu_seconds": (cpuSeconds * 100).rounded() / 100,
            "wall_seconds": (wall * 100).rounded() / 100,
            "cpu_cores": wall > 0 ? (cpuSeconds / wall * 100).rounded() / 100 : 0,
        ]
        if streams > 0 {
            result["rss_per_stream_kb"] = (Double(peakRSSKB - baseline.rssKB) / Double(streams) * 100).rounded() / 100
        }
        return result
    }
}
