import ChorusStore
import Logging
import SQLKit
import Testing

/// Recurring statements run prepared on PostgreSQL (`PostgresStatements`), on a real server. Each
/// test uses a pool of one connection, so `pg_prepared_statements` shows that connection's.
@Suite(.postgresServer, .timeLimit(.minutes(2)))
struct PostgresStatementsTests {
    private let logger = Logger(label: "test")

    private func withBackend(preparedStatements: Int = PostgresBackend.Configuration.defaultPreparedStatements, _ body: (PostgresBackend) async throws -> Void) async throws {
        try await PostgresTestServer.required().withFreshDatabase { configuration in
            var configuration = configuration
            configuration.maximumConnections = 1
            configuration.preparedStatements = preparedStatements
            try await PostgresBackend.withRunning(configuration, logger: logger) { backend in
                try await backend.write("CREATE TABLE notes (id TEXT PRIMARY KEY, body TEXT, n BIGINT NOT NULL, flag BOOLEAN)")
                try await body(backend)
            }
        }
    }

    /// The texts of the statements Chorus has prepared on the (one) connection.
    private func prepared(_ backend: PostgresBackend) async throws -> [String] {
        try await backend.database.raw("SELECT statement FROM pg_prepared_statements WHERE name LIKE 'chorus_%' ORDER BY prepare_time")
            .all().map { try $0.decode(column: "statement", as: String.self) }
    }

    private func insert(_ backend: PostgresBackend, id: String, body: String?, n: Int64, flag: Bool?) async throws {
        try await backend.write("INSERT INTO notes (id, body, n, flag) VALUES (\(bind: id), \(bind: body), \(bind: n), \(bind: flag))")
    }

    @Test func aStatementRunsPreparedFromItsSecondTimeWithNullsAndValuesAlike() async throws {
        try await withBackend { backend in
            // body and flag alternate between NULL and a value: NULL parameters are untyped, so
            // the same text with a NULL in a place is a statement of its own.
            let rows: [(String, String?, Int64, Bool?)] = [
                ("a", nil, 1, nil), ("b", "bee", 2, true), ("c", nil, 3, nil), ("d", "dee", 4, false), ("e", nil, 5, nil),
            ]
            for (id, body, n, flag) in rows {
                try await insert(backend, id: id, body: body, n: n, flag: flag)
            }
            let statements = try await prepared(backend).filter { $0.hasPrefix("INSERT INTO notes") }
            #expect(statements.count == 2)

            // Reads too: the first unnamed, the next ones prepared, all with the right rows.
            for (id, body, n, flag) in rows + rows {
                let row = try #require(try await backend.database.raw("SELECT body, n, flag FROM notes WHERE id = \(bind: id)").first())
                #expect(try row.decode(column: "body", as: String?.self) == body)
                #expect(try row.decode(column: "n", as: Int64.self) == n)
                #expect(try row.decode(column: "flag", as: Bool?.self) == flag)
            }
            #expect(try await prepared(backend).contains { $0.hasPrefix("SELECT body, n, flag FROM notes") })
        }
    }

    @Test func aTextPreparedWithANullIsNotReusedForAValue() async throws {
        try await withBackend { backend in
            // Prepared with NULL, the parameter takes the column's type (int4); a later `Int64`
            // value, sent as int8, must not be bound to that statement.
            try await backend.write("ALTER TABLE notes ADD COLUMN small INTEGER")
            for (id, small) in [("a", nil), ("b", nil), ("c", Int64(7)), ("d", Int64(8))] as [(String, Int64?)] {
                try await backend.write("INSERT INTO notes (id, n, small) VALUES (\(bind: id), \(bind: Int64(0)), \(bind: small))")
            }
            let total = try await backend.database.raw("SELECT sum(small)::BIGINT AS total FROM notes").first()?.decode(column: "total", as: Int64.self)
            #expect(total == 15)
        }
    }

    @Test func statementsInATransactionArePreparedAndARollbackKeepsThemUsable() async throws {
        try await withBackend { backend in
            for attempt in 0..<3 {
                await #expect(throws: (any Error).self) {
                    try await backend.transaction { db in
                        try await db.raw("INSERT INTO notes (id, body, n) VALUES (\(bind: "t\(attempt)"), \(bind: "x"), \(bind: Int64(attempt)))").run()
                        struct Abandoned: Error {}
                        throw Abandoned()
                    }
                }
            }
            try await backend.transaction { db in
                try await db.raw("INSERT INTO notes (id, body, n) VALUES (\(bind: "kept"), \(bind: "x"), \(bind: Int64(9)))").run()
            }
            let ids = try await backend.database.raw("SELECT id FROM notes ORDER BY id").all().map { try $0.decode(column: "id", as: String.self) }
            #expect(ids == ["kept"])
            #expect(try await prepared(backend).contains { $0.hasPrefix("INSERT INTO notes (id, body, n)") })
        }
    }

    @Test func aPreparedPlanMadeStaleByASchemaChangeCostsOneFailureThenWorks() async throws {
        try await withBackend { backend in
            try await insert(backend, id: "a", body: "x", n: 1, flag: nil)
            let select: SQLQueryString = "SELECT * FROM notes WHERE n > \(bind: Int64(0))"
            for _ in 0..<3 {
                #expect(try await backend.database.raw(select).all().count == 1)
            }
            try await backend.write("ALTER TABLE notes ADD COLUMN extra TEXT NOT NULL DEFAULT 'new'")
            // PostgreSQL refuses a prepared SELECT * whose columns changed ("cached plan must not
            // change result type"); the connection is then replaced, and the next try prepares anew.
            await #expect(throws: (any Error).self) { try await backend.database.raw(select).all() }
            let row = try #require(try await backend.database.raw(select).first())
            #expect(try row.decode(column: "extra", as: String.self) == "new")
        }
    }

    @Test func statementsBeyondTheCapacityAndWithZeroRunUnnamed() async throws {
        for capacity in [0, 1] {
            try await withBackend(preparedStatements: capacity) { backend in
                for n in Int64(1)...3 {
                    try await insert(backend, id: "i\(n)", body: "x", n: n, flag: true)
                    try await backend.write("UPDATE notes SET n = n + 10 WHERE id = \(bind: "i\(n)")")
                }
                let statements = try await prepared(backend)
                #expect(statements.count == capacity)
                let sum = try await backend.database.raw("SELECT sum(n)::BIGINT AS total FROM notes").first()?.decode(column: "total", as: Int64.self)
                #expect(sum == 36)
            }
        }
    }
}
