import ChorusCore
public import Logging
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
        // Several processes (gateways, workers) may start at once: on PostgreSQL each step takes a
        // transaction-scoped advisory lock; SQLite's BEGIN IMMEDIATE already serializes them.
        try await backend.transaction { db in
            try await Self.lock(db)
            try await db.raw("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version BIGINT PRIMARY KEY,
                    name TEXT NOT NULL,
                    applied_at BIGINT NOT NULL
                )
                """).run()
        }
        var done: [Int] = []
        for migration in migrations.sorted(by: { $0.version < $1.version }) {
            let applied = try await backend.transaction { db -> Bool in
                try await Self.lock(db)
                let exists = try await db.raw("SELECT version FROM schema_migrations WHERE version = \(bind: migration.version)").first() != nil
                if exists { return false }
                for statement in migration.statements {
                    try await db.raw(SQLQueryString(statement)).run()
                }
                try await db.raw("""
                    INSERT INTO schema_migrations (version, name, applied_at)
                    VALUES (\(bind: migration.version), \(bind: migration.name), \(bind: nowMilliseconds()))
                    """).run()
                return true
            }
            guard applied else { continue }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
            done.append(migration.version)
        }
        return done
    }

    /// The latest version this build knows, and the one the database has.
    public func status(_ migrations: [Migration] = Migrations.all) async throws -> (known: Int, applied: Int) {
        let row = try await backend.database.raw("SELECT MAX(version) AS v FROM schema_migrations").first()
        return (migrations.map(\.version).max() ?? 0, try row?.decode(column: "v", as: Int?.self) ?? 0)
    }

    private static func lock(_ db: any SQLDatabase) async throws {
        if db.dialect.name == "postgresql" {
            try await db.raw("SELECT pg_advisory_xact_lock(724200)").run()
        }
    }
}
