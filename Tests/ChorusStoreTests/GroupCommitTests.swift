import ChorusCore
import ChorusStore
import SQLKit
import Testing

extension ConversationStoreTests {
    struct Refused: Error {}

    /// SQLite commits concurrent transactions together; one that fails after writing must lose
    /// only its own rows, and every caller must get its own outcome.
    @Test func aFailingTransactionInAGroupCommitLosesOnlyItsOwnWrites() async throws {
        try await withStore(.sqlite) { _, backend in
            try await backend.transaction { db in try await db.raw("CREATE TABLE t (id BIGINT PRIMARY KEY)").run() }
            let outcomes = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for index in 0..<60 {
                    group.addTask {
                        do {
                            let echoed = try await backend.transaction { db -> Int in
                                try await db.raw("INSERT INTO t (id) VALUES (\(bind: index))").run()
                                if index % 7 == 0 { throw Refused() }
                                return index
                            }
                            #expect(echoed == index)
                            return (index, true)
                        } catch is Refused {
                            return (index, false)
                        }
                    }
                }
                return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            let rows = try await backend.database.raw("SELECT id FROM t ORDER BY id").all().map { try $0.decode(column: "id", as: Int.self) }
            #expect(rows == (0..<60).filter { $0 % 7 != 0 })
            #expect(outcomes.filter { !$0.value }.keys.sorted() == (0..<60).filter { $0 % 7 == 0 })
        }
    }
}
