public import Logging
public import ServiceLifecycle
import Synchronization

/// Entries that requests append in memory and one transaction a second writes, so that keeping
/// them never adds a database write to a request's path: the audit log and the usage records.
/// A crash loses at most the last interval; a graceful stop writes everything first.
public final class BufferedWriter<Entry: Sendable>: Service {
    private let buffer = Mutex<[Entry]>([])
    private let flushes = Atomic<Int>(0)
    /// Write transactions so far (one per flush with entries), so that the writes of a chat turn
    /// can be counted apart from these batches.
    public var committedWrites: Int { flushes.load(ordering: .relaxed) }
    private let what: String
    private let write: @Sendable ([Entry]) async throws -> Void
    private let interval: Duration
    private let logger: Logger
    /// Entries kept while the database is unreachable, beyond which the oldest are dropped.
    private let maxBuffered = 100_000

    /// - Parameter what: names the entries in log messages ("audit log", "usage records").
    public init(_ what: String, interval: Duration = .seconds(1), logger: Logger, write: @escaping @Sendable ([Entry]) async throws -> Void) {
        self.what = what
        self.write = write
        self.interval = interval
        self.logger = logger
    }

    public func record(_ entry: Entry) {
        let dropped = buffer.withLock { entries -> Bool in
            entries.append(entry)
            guard entries.count > maxBuffered else { return false }
            entries.removeFirst(entries.count - maxBuffered)
            return true
        }
        if dropped { logger.error("buffer full; the oldest entries were dropped", metadata: ["what": "\(what)"]) }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            await flush()
        }
        await flush()
    }

    /// Writes what is buffered; on failure it stays buffered for the next round.
    public func flush() async {
        let entries = buffer.withLock { entries in
            defer { entries.removeAll(keepingCapacity: true) }
            return entries
        }
        guard !entries.isEmpty else { return }
        do {
            try await write(entries)
            flushes.add(1, ordering: .relaxed)
        } catch {
            logger.warning("buffered write failed; retrying", metadata: ["what": "\(what)", "error": "\(error)", "entries": "\(entries.count)"])
            buffer.withLock { $0.insert(contentsOf: entries, at: 0) }
        }
    }
}
