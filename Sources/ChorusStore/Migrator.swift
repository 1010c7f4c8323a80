import ChorusCore
import Logging
import SQLKit

/// Applies the versioned migrations that the database has not seen yet, each in its own transaction.
public struct Migrator: Sendable {
    let backend: any SQLBackend
    let logger: Logger

    public init(backend: any SQLBackend, logger: Logger) {
        self.backend = backend
        self.logger = logger
    }

    /// Returns the versions applied by this call.
    @discardableResult
    public func migrate(_ migrations: [Migration] = Migrations.all) async throws -> [Int] {
        try await backend.database.raw("""
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at BIGINT NOT NULL
            )
            """).run()
        let applied = Set(try await backend.database.raw("SELECT version FROM schema_migrations").all().map {
            try $0.decode(column: "version", as: Int.self)
        })
        var done: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(migration.version) {
            try await backend.transaction { db in
                for statement in migration.statements {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw("""
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: nowMilliseconds()))
                    """).run()
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            done.append(migration.version)
        }
        return done
    }
}
