public import ChorusCore
public import ChorusStore
public import Logging
public import ServiceLifecycle
import Synchronization

/// The audit log's writer: requests append entries in memory, and one transaction a second writes
/// them, so auditing never adds a database write to a request's path. A crash loses at most the
/// last interval; a graceful stop writes everything first.
public final class AuditLog: Service {
    private let buffer = Mutex<[AuditEntry]>([])
    private let flushes = Atomic<Int>(0)
    /// Write transactions of the audit log so far (one per flush with entries), so that the
    /// writes of a chat turn can be counted apart from the log's batches.
    public var committedWrites: Int { flushes.load(ordering: .relaxed) }
    private let store: SQLAuthStore
    private let interval: Duration
    private let logger: Logger
    /// Entries kept while the database is unreachable, beyond which the oldest are dropped.
    private let maxBuffered = 100_000

    public init(store: SQLAuthStore, interval: Duration = .seconds(1), logger: Logger) {
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    public func record(_ entry: AuditEntry) {
        let dropped = buffer.withLock { entries -> Bool in
            entries.append(entry)
            guard entries.count > maxBuffered else { return false }
            entries.removeFirst(entries.count - maxBuffered)
            return true
        }
        if dropped { logger.error("audit log buffer full; the oldest entries were dropped") }
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
            try await store.append(audit: entries)
            flushes.add(1, ordering: .relaxed)
        } catch {
            logger.warning("audit log write failed; retrying", metadata: ["error": "\(error)", "entries": "\(entries.count)"])
            buffer.withLock { $0.insert(contentsOf: entries, at: 0) }
        }
    }
}

/// What the audit log keeps of a request's parameters: field names and short scalar values;
/// secrets redacted, long text and lists summarised (so prompts are not copied into the log).
public enum AuditRedaction {
    static let secretWords: [[UInt8]] = ["password", "secret", "authorization", "cookie", "credential"].map { Array($0.utf8) }
    static let secretSuffixes: [[UInt8]] = ["token", "key", "code"].map { Array($0.utf8) }

    /// `password`, `new_password`, `api_key`, `csrf_token`, `invite_code`… but not `max_tokens`.
    /// On bytes: this runs for every field of every audited body.
    public static func isSecret(_ name: String) -> Bool {
        var lowered = Array(name.utf8)
        for index in lowered.indices where lowered[index] >= 65 && lowered[index] <= 90 { lowered[index] += 32 }
        for suffix in secretSuffixes where lowered.count >= suffix.count && lowered.suffix(suffix.count).elementsEqual(suffix) {
            return true
        }
        for word in secretWords where lowered.count >= word.count {
            for start in 0...(lowered.count - word.count) where lowered[start] == word[0] {
                if lowered[start..<(start + word.count)].elementsEqual(word) { return true }
            }
        }
        return false
    }

    public static func redact(_ value: JSONValue, depth: Int = 0) -> JSONValue {
        switch value {
        case .object(let fields):
            guard depth < 3 else { return .string("[object]") }
            var result: [String: JSONValue] = [:]
            for (name, field) in fields {
                result[name] = isSecret(name) ? .string("[REDACTED]") : redact(field, depth: depth + 1)
            }
            return .object(result)
        case .array(let items):
            return .string("[\(items.count) items]")
        case .string(let text):
            return text.count > 64 ? .string("[\(text.count) chars]") : value
        default:
            return value
        }
    }

    /// Query parameters, the same way.
    public static func redact(query: [(String, String)]) -> JSONValue {
        var result: [String: JSONValue] = [:]
        for (name, text) in query {
            result[name] = isSecret(name) ? .string("[REDACTED]") : redact(.string(text))
        }
        return .object(result)
    }
}
