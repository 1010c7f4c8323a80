import ChorusCore
import SQLKit

/// Where cached answers live: the database (embedded) or Redis (distributed). Values are the
/// answer as JSON text, keys already include the model and owner.
public protocol ResponseCacheStore: Sendable {
    func cached(key: String) async throws -> String?
    func cache(key: String, model: String, value: String, ttlSeconds: Double) async throws
}

/// The cache in the `response_cache` table; expired rows are ignored on read and replaced on write.
public struct SQLResponseCacheStore: ResponseCacheStore {
    public let backend: any SQLBackend

    public init(backend: any SQLBackend) {
        self.backend = backend
    }

    public func cached(key: String) async throws -> String? {
        try await backend.database.raw("""
            SELECT response FROM response_cache WHERE key = \(bind: key) AND expires_at > \(bind: nowMilliseconds())
            """).first()?.decode(column: "response", as: String.self)
    }

    public func cache(key: String, model: String, value: String, ttlSeconds: Double) async throws {
        let now = nowMilliseconds()
        try await backend.write("""
            INSERT INTO response_cache (key, model, response, expires_at)
            VALUES (\(bind: key), \(bind: model), \(bind: value), \(bind: now + Int64(ttlSeconds * 1000)))
            ON CONFLICT (key) DO UPDATE SET response = excluded.response, expires_at = excluded.expires_at
            """)
    }
}
