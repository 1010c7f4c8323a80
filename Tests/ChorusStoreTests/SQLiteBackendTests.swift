@testable import ChorusStore
import Foundation
import Logging
import NIOCore
import SQLKit
import SQLiteKit
import Testing

/// `SQLiteBackend`'s own connections: values survive the trip, reads see committed data only,
/// the read side refuses writes, and mistakes are errors rather than silent.
@Suite(.timeLimit(.minutes(1)))
struct SQLiteBackendTests {
    func withBackend(_ body: (SQLiteBackend) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = try await SQLiteBackend.open(path: folder.appendingPathComponent("test.sqlite").path, logger: Logger(label: "test"))
        do {
            try await backend.write("CREATE TABLE v (id INTEGER PRIMARY KEY, t TEXT, b BLOB, i BIGINT, d DOUBLE PRECISION)")
            try await body(backend)
        } catch {
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }

    @Test func valuesComeBackAsTheyWentIn() async throws {
        try await withBackend { backend in
            let texts = ["", "plain", "emoji 🎼 and 中文", "a\u{0}b"]
            for (id, text) in texts.enumerated() {
                try await backend.write("""
                    INSERT INTO v (id, t, b, i, d) VALUES (\(bind: id), \(bind: text), \(bind: ByteBuffer(string: text)), \(bind: Int64.max - Int64(id)), \(bind: 0.5 + Double(id)))
                    """)
            }
            try await backend.write("INSERT INTO v (id) VALUES (\(bind: 99))")
            // The same statement text again and again: answered from the prepared-statement cache.
            for (id, text) in texts.enumerated() {
                let row = try #require(try await backend.database.raw("SELECT * FROM v WHERE id = \(bind: id)").first())
                #expect(try row.decode(column: "t", as: String.self) == text)
                #expect(try row.decode(column: "b", as: ByteBuffer.self) == ByteBuffer(string: text))
                #expect(try row.decode(column: "i", as: Int64.self) == Int64.max - Int64(id))
                #expect(try row.decode(column: "d", as: Double.self) == 0.5 + Double(id))
            }
            let empty = try #require(try await backend.database.raw("SELECT * FROM v WHERE id = \(bind: 99)").first())
            #expect(try empty.decodeNil(column: "t"))
            #expect(try empty.decode(column: "t", as: String?.self) == nil)
            #expect(try empty.decode(column: "b", as: ByteBuffer?.self) == nil)
            #expect(throws: (any Error).self) { try empty.decode(column: "missing", as: String.self) }
        }
    }

    @Test func readsSeeOnlyCommittedRows() async throws {
        try await withBackend { backend in
            let (inserted, signalInserted) = AsyncStream.makeStream(of: Void.self)
            let (release, signalRelease) = AsyncStream.makeStream(of: Void.self)
            async let transaction: Void = backend.transaction { db in
                try await db.raw("INSERT INTO v (id, t) VALUES (1, 'pending')").run()
                signalInserted.yield()
                for await _ in release { break }
            }
            for await _ in inserted { break }
            // The writer holds an open transaction with the row in it; a reader does not see it.
            #expect(try await backend.database.raw("SELECT id FROM v").all().isEmpty)
            signalRelease.yield()
            try await transaction
            #expect(try await backend.database.raw("SELECT id FROM v").all().count == 1)
        }
    }

    @Test func theReadSideRefusesWritesAndWritesNothing() async throws {
        try await withBackend { backend throws in
            await #expect(throws: SQLiteFailure.self) {
                try await backend.database.raw("INSERT INTO v (id, t) VALUES (1, 'x')").run()
            }
            #expect(try await backend.database.raw("SELECT id FROM v").all().isEmpty)
        }
    }

    @Test func moreThanOneStatementInATextIsRefused() async throws {
        try await withBackend { backend in
            let error = await #expect(throws: SQLiteFailure.self) {
                try await backend.write("INSERT INTO v (id) VALUES (1); INSERT INTO v (id) VALUES (2)")
            }
            #expect(error?.description.contains("more than one statement") == true)
            #expect(try await backend.database.raw("SELECT id FROM v").all().isEmpty)
            // A trailing semicolon is one statement.
            try await backend.write("INSERT INTO v (id) VALUES (3);")
            #expect(try await backend.database.raw("SELECT id FROM v").all().count == 1)
        }
    }

    @Test func aFailedStatementLeavesItsConnectionUsable() async throws {
        try await withBackend { backend in
            try await backend.write("INSERT INTO v (id) VALUES (1)")
            await #expect(throws: SQLiteFailure.self) { try await backend.write("INSERT INTO v (id) VALUES (1)") }
            await #expect(throws: SQLiteFailure.self) { try await backend.database.raw("SELECT nope FROM v").all() }
            try await backend.write("INSERT INTO v (id) VALUES (2)")
            #expect(try await backend.database.raw("SELECT id FROM v ORDER BY id").all().map { try $0.decode(column: "id", as: Int.self) } == [1, 2])
        }
    }

    /// A cached statement is parsed and planned once, however its values change from run to run.
    /// SQLite's planner notes the parameters it looked at (here the `c = ?2` term under `MAX`),
    /// and clearing the bindings after a run would make it prepare such a statement again.
    @Test func aCachedStatementIsPlannedOnceWhateverItsValues() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-sqlite-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let handle = try SQLiteHandle(path: path, readOnly: false)
        defer { handle.close() }
        func run(_ sql: String, _ binds: [SQLiteData] = []) throws -> [[SQLiteData]] {
            var rows: [[SQLiteData]] = []
            try handle.run(sql, binds: binds, decoder: SQLiteDataDecoder()) { row in
                rows.append((row as? SQLiteValuesRow)?.values ?? [])
            }
            return rows
        }
        _ = try run("CREATE TABLE m (id TEXT PRIMARY KEY, c TEXT NOT NULL, seq BIGINT NOT NULL)")
        _ = try run("CREATE INDEX m_c ON m (c, seq)")
        let insert = "INSERT INTO m (id, c, seq) VALUES (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM m WHERE c = ?2))"
        for index in 0..<6 {
            _ = try run(insert, [.text("m\(index)"), .text("c\(index % 3)")])
        }
        #expect(handle.reprepareCount(of: insert) == 0)
        // The values of each run were its own: every `c` numbered its rows 1, 2.
        let rows = try run("SELECT c, seq FROM m ORDER BY c, seq")
        let expected: [[SQLiteData]] = ["c0", "c1", "c2"].flatMap { c in [[.text(c), .integer(1)], [.text(c), .integer(2)]] }
        #expect(rows == expected)

        // The statement does not keep a large value until its next run.
        let before = handle.statementMemory()
        let large = "INSERT INTO m (id, c, seq) VALUES (?1, ?2, 9)"
        _ = try run(large, [.text("big"), .text(String(repeating: "x", count: 1 << 20))])
        #expect(handle.statementMemory() - before < 64 * 1024)
        #expect(try run("SELECT length(c) FROM m WHERE id = 'big'") == [[.integer(1 << 20)]])

        // Since bindings are not cleared, a run must bind every parameter: fewer values are refused.
        let error = #expect(throws: SQLiteFailure.self) { _ = try run(insert, [.text("m9")]) }
        #expect(error?.description.contains("1 values for 2 parameters") == true)
        #expect(try run("SELECT id FROM m WHERE id = 'm9'").isEmpty)
    }

    @Test func anInMemoryDatabaseIsRefusedWithAReason() async throws {
        let error = await #expect(throws: SQLiteFailure.self) {
            _ = try await SQLiteBackend.open(path: ":memory:", logger: Logger(label: "test"))
        }
        #expect(error?.description.contains("SQLite file") == true)
    }
}
