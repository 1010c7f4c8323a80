public import ChorusCore
public import ChorusStore
public import Logging
import Synchronization

/// The audit log's writer (see `BufferedWriter`).
public typealias AuditLog = BufferedWriter<AuditEntry>

extension BufferedWriter where Entry == AuditEntry {
    public convenience init(store: SQLAuthStore, interval: Duration = .seconds(1), logger: Logger) {
        self.init("audit log", interval: interval, logger: logger) { entries in try await store.append(audit: entries) }
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
