import ChorusCore
import ChorusStore
import Foundation
import Logging
import SQLKit
import Testing

/// The store's dialects: every test runs on each.
enum Dialect: String, CaseIterable, Sendable {
    case sqlite
    case postgres
}

/// The store suite runs against a real SQLite file and a real PostgreSQL server (a fresh database per test).
@Suite(.postgresServer, .timeLimit(.minutes(3)))
struct ConversationStoreTests {
    private let logger = Logger(label: "test")

    /// A migrated store on `dialect`. `maximumConnections` bounds the PostgreSQL pool.
    func withStore(
        _ dialect: Dialect, maximumConnections: Int = 4, _ body: (SQLConversationStore, any SQLBackend) async throws -> Void
    ) async throws {
        switch dialect {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-store-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: folder) }
            let backend = try await SQLiteBackend.open(path: folder.appendingPathComponent("test.sqlite").path, logger: logger)
            try await Migrator(backend: backend, logger: logger).migrate()
            do {
                try await body(SQLConversationStore(backend: backend), backend)
            } catch {
                try await backend.close()
                throw error
            }
            try await backend.close()
        case .postgres:
            try await PostgresTestServer.required().withFreshDatabase { configuration in
                var configuration = configuration
                configuration.maximumConnections = maximumConnections
                try await PostgresBackend.withRunning(configuration, logger: logger) { backend in
                    try await Migrator(backend: backend, logger: logger).migrate()
                    try await body(SQLConversationStore(backend: backend), backend)
                }
            }
        }
    }

    private func userMessage(_ text: String, turn: String, owner: String = localOwnerID, at time: Int64 = nowMilliseconds()) -> StoredMessage {
        StoredMessage(id: Identifier.make("msg_"), conversationID: "", ownerID: owner, role: "user", content: text, turnID: turn, createdAt: time, updatedAt: time)
    }

    private func assistant(_ id: String, in conversation: String, turn: String, content: String, status: MessageStatus, at time: Int64) -> StoredMessage {
        StoredMessage(id: id, conversationID: conversation, ownerID: localOwnerID, role: "assistant", content: content, reasoning: "thought", status: status, turnID: turn, createdAt: time, updatedAt: time)
    }

    @Test(arguments: Dialect.allCases)
    func migrationsAreIdempotent(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let applied = try await Migrator(backend: backend, logger: Logger(label: "test")).migrate()
            #expect(applied.isEmpty)
        }
    }

    @Test(arguments: Dialect.allCases)
    func aBatchStoresItsTurnAndTasksInOneWrite(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, backend in
            let tasks = SQLTaskStore(backend: backend)
            for (conversationID, turn) in [(nil, "b1"), ("conv_b", "b2")] as [(String?, String)] {
                let before = backend.committedWrites
                let (conversation, batch, records) = try await store.startBatch(TurnStart(
                    ownerID: localOwnerID, conversationID: conversationID, newConversationID: "conv_b", title: "fan", model: "m1,m2",
                    messages: [userMessage("first", turn: turn), userMessage("second", turn: turn)], now: 1000)
                ) { conversation in
                    let batch = BatchRecord(id: "batch_\(turn)", ownerID: localOwnerID, conversationID: conversation.id, models: ["m1", "m2"], createdAt: 1000)
                    return (batch, ["m1", "m2"].map { model in
                        TaskRecord(id: "task_\(turn)_\(model)", ownerID: localOwnerID, batchID: batch.id, type: "chat", model: model,
                                   params: .object(["n": .int(1)]), conversationID: conversation.id, createdAt: 1000, updatedAt: 1000)
                    })
                }
                #expect(backend.committedWrites - before == 1)
                #expect(conversation.id == "conv_b")
                #expect(batch.conversationID == "conv_b")
                let stored = try #require(try await tasks.batch(id: "batch_\(turn)", ownerID: localOwnerID))
                #expect(stored.models == ["m1", "m2"])
                #expect(try await tasks.tasks(batchID: "batch_\(turn)").map(\.id).sorted() == records.map(\.id).sorted())
                #expect(try await tasks.task(id: "task_\(turn)_m2", ownerID: localOwnerID)?.params["n"] == .int(1))
            }
            // The second batch continued the conversation: four user messages, in order.
            let messages = try await store.messages(conversationID: "conv_b", ownerID: localOwnerID)
            #expect(messages.map(\.content) == ["first", "second", "first", "second"])
            #expect(messages.map(\.turnID) == ["b1", "b1", "b2", "b2"])
            // A batch in another owner's conversation writes nothing.
            await #expect(throws: ChorusError.self) {
                _ = try await store.startBatch(TurnStart(
                    ownerID: "someone_else", conversationID: "conv_b", newConversationID: "conv_x", title: nil, model: "m1",
                    messages: [userMessage("x", turn: "b3", owner: "someone_else")], now: 1000)
                ) { conversation in
                    (BatchRecord(id: "batch_b3", ownerID: "someone_else", conversationID: conversation.id, models: ["m1"], createdAt: 1000), [])
                }
            }
            #expect(try await tasks.batch(id: "batch_b3", ownerID: nil) == nil)
        }
    }

    /// Stored ids are made in time order so that new rows land at the right edge of each index;
    /// that holds only if the database sorts them in that order: SQLite's BINARY collation,
    /// PostgreSQL's default, and a linguistic collation (ICU's root locale puts `a` before `B`).
    @Test(arguments: Dialect.allCases)
    func orderedIDsSortInCreationOrderInTheDatabase(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, backend in
            let start = nowMilliseconds()
            // 40 milliseconds 7 apart cross several base-36 digit boundaries.
            let ids = (0..<40).map { Identifier.ordered("conv_", milliseconds: start + Int64($0) * 7) }
            for id in ids.shuffled() {
                _ = try await store.startTurn(TurnStart(
                    ownerID: localOwnerID, conversationID: nil, newConversationID: id, title: nil, model: "m",
                    messages: [userMessage("hi", turn: Identifier.ordered("req_"))], now: start))
            }
            var orders = ["ORDER BY id"]
            if dialect == .postgres { orders.append(#"ORDER BY id COLLATE "und-x-icu""#) }
            for order in orders {
                let rows = try await backend.database.raw("SELECT id FROM conversations \(unsafeRaw: order)").all()
                #expect(try rows.map { try $0.decode(column: "id", as: String.self) } == ids, "\(order)")
            }
        }
    }

    @Test(arguments: Dialect.allCases)
    func aTurnCreatesTheConversationAndItsMessagesInOneWrite(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, backend in
            let before = backend.committedWrites
            let conversation = try await store.startTurn(TurnStart(
                ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_a", title: "hello", model: "m",
                messages: [userMessage("hello", turn: "t1")], now: 1000))
            #expect(backend.committedWrites - before == 1)
            #expect(conversation.id == "conv_a")
            let messages = try await store.messages(conversationID: "conv_a", ownerID: localOwnerID)
            #expect(messages.map(\.content) == ["hello"])
            #expect(messages[0].conversationID == "conv_a")
        }
    }

    @Test(arguments: Dialect.allCases)
    func checkpointThenFinalIsOneAssistantRow(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, _ in
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_b", title: nil, model: "m", messages: [userMessage("q", turn: "t1", at: 1000)], now: 1000))
            try await store.saveAssistantMessage(assistant("msg_x", in: "conv_b", turn: "t1", content: "par", status: .streaming, at: 1000))
            try await store.saveAssistantMessage(assistant("msg_x", in: "conv_b", turn: "t1", content: "partial answer", status: .complete, at: 1000))
            let messages = try await store.messages(conversationID: "conv_b", ownerID: localOwnerID)
            #expect(messages.map(\.role) == ["user", "assistant"])
            #expect(messages[1].content == "partial answer")
            #expect(messages[1].reasoning == "thought")
            #expect(messages[1].status == .complete)
        }
    }

    @Test(arguments: Dialect.allCases)
    func aSecondAssistantRowForTheSameTurnIsRefused(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, _ in
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_c", title: nil, model: "m", messages: [userMessage("q", turn: "t1")], now: 1000))
            try await store.saveAssistantMessage(assistant("msg_1", in: "conv_c", turn: "t1", content: "a", status: .complete, at: 1000))
            await #expect(throws: (any Error).self) {
                try await store.saveAssistantMessage(assistant("msg_2", in: "conv_c", turn: "t1", content: "b", status: .complete, at: 1000))
            }
        }
    }

    @Test(arguments: Dialect.allCases)
    func historyIsTheLastNInOrder(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, _ in
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_d", title: nil, model: "m", messages: [userMessage("one", turn: "t1", at: 1000)], now: 1000))
            try await store.saveAssistantMessage(assistant("msg_a1", in: "conv_d", turn: "t1", content: "two", status: .complete, at: 1000))
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: "conv_d", newConversationID: "unused", title: nil, model: "m", messages: [userMessage("three", turn: "t2", at: 2000)], now: 2000))
            try await store.saveAssistantMessage(assistant("msg_a2", in: "conv_d", turn: "t2", content: "four", status: .complete, at: 2000))
            let last3 = try await store.history(conversationID: "conv_d", ownerID: localOwnerID, limit: 3)
            #expect(last3.map(\.content) == ["two", "three", "four"])
        }
    }

    @Test(arguments: Dialect.allCases)
    func anotherOwnersConversationIsNotFoundAndNothingIsWritten(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, backend in
            _ = try await store.startTurn(TurnStart(ownerID: "alice", conversationID: nil, newConversationID: "conv_e", title: nil, model: "m", messages: [userMessage("mine", turn: "t1", owner: "alice")], now: 1000))
            let writes = backend.committedWrites
            await #expect(throws: ChorusError.notFound(what: "conversation", id: "conv_e")) {
                _ = try await store.startTurn(TurnStart(ownerID: "bob", conversationID: "conv_e", newConversationID: "x", title: nil, model: "m", messages: [userMessage("intrude", turn: "t2", owner: "bob")], now: 2000))
            }
            #expect(backend.committedWrites == writes)
            #expect(try await store.conversation(id: "conv_e", ownerID: "bob") == nil)
            #expect(try await store.messages(conversationID: "conv_e", ownerID: "alice").map(\.content) == ["mine"])
            #expect(try await store.deleteConversation(id: "conv_e", ownerID: "bob") == false)
        }
    }

    @Test(arguments: Dialect.allCases)
    func ensureConversationCreatesOnceAndNeverTakesAnotherOwnersRow(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, _ in
            let first = Conversation(id: "conv_named", ownerID: "alice", title: "first", model: "m", createdAt: 1000, updatedAt: 1000)
            try await store.ensureConversation(first)
            try await store.ensureConversation(Conversation(id: "conv_named", ownerID: "alice", title: "second", model: "m", createdAt: 2000, updatedAt: 2000))
            try await store.ensureConversation(Conversation(id: "conv_named", ownerID: "bob", title: "bob's", model: "m", createdAt: 3000, updatedAt: 3000))
            #expect(try await store.conversation(id: "conv_named", ownerID: "alice") == first, "the first one stays as it was")
            #expect(try await store.conversation(id: "conv_named", ownerID: "bob") == nil)
            _ = try await store.startTurn(TurnStart(ownerID: "alice", conversationID: "conv_named", newConversationID: "x", title: nil, model: "m", messages: [userMessage("hi", turn: "t1", owner: "alice")], now: 4000))
            #expect(try await store.messages(conversationID: "conv_named", ownerID: "alice").map(\.content) == ["hi"])
        }
    }

    @Test(arguments: Dialect.allCases)
    func renameListAndDelete(_ dialect: Dialect) async throws {
        try await withStore(dialect) { store, _ in
            for (index, id) in ["conv_1", "conv_2", "conv_3"].enumerated() {
                _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: id, title: id, model: "m", messages: [userMessage("hi", turn: "t\(index)")], now: Int64(1000 * (index + 1))))
            }
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 2, updatedBefore: nil).map(\.id) == ["conv_3", "conv_2"])
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 2, updatedBefore: 2000).map(\.id) == ["conv_1"])
            // Title search: a case-insensitive substring, with LIKE's wildcards taken literally.
            _ = try await store.renameConversation(id: "conv_3", ownerID: localOwnerID, title: "Trip to Paris_2026 (100%)")
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 10, updatedBefore: nil, titleContains: "paris").map(\.id) == ["conv_3"])
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 10, updatedBefore: nil, titleContains: "s_2026 (100%").map(\.id) == ["conv_3"])
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 10, updatedBefore: nil, titleContains: "p%s").isEmpty)
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 10, updatedBefore: nil, titleContains: "conv_").map(\.id) == ["conv_2", "conv_1"])
            let renamed = try await store.renameConversation(id: "conv_1", ownerID: localOwnerID, title: "Renamed")
            #expect(renamed?.title == "Renamed")
            #expect(try await store.deleteConversation(id: "conv_2", ownerID: localOwnerID))
            #expect(try await store.conversation(id: "conv_2", ownerID: localOwnerID) == nil)
            #expect(try await store.messages(conversationID: "conv_2", ownerID: localOwnerID).isEmpty)
        }
    }

    @Test(arguments: Dialect.allCases)
    func aFailedTurnWritesNothingAndTheConnectionIsReused(_ dialect: Dialect) async throws {
        // One connection: after the rollback, the same connection must serve the next statements.
        try await withStore(dialect, maximumConnections: 1) { store, backend in
            let writes = backend.committedWrites
            var duplicate = userMessage("second", turn: "t1")
            let first = userMessage("first", turn: "t1")
            duplicate.id = first.id
            await #expect(throws: (any Error).self) {
                _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_f", title: nil, model: "m", messages: [first, duplicate], now: 1000))
            }
            #expect(backend.committedWrites == writes)
            #expect(try await store.conversation(id: "conv_f", ownerID: localOwnerID) == nil)
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_f", title: nil, model: "m", messages: [first], now: 1000))
            #expect(try await store.messages(conversationID: "conv_f", ownerID: localOwnerID).map(\.content) == ["first"])
        }
    }

    @Test(arguments: Dialect.allCases)
    func concurrentTurnsEachCommitOnceThroughABoundedPool(_ dialect: Dialect) async throws {
        // 24 transactions and 24 reads at once through 3 connections: each transaction keeps its own.
        try await withStore(dialect, maximumConnections: 3) { store, backend in
            let before = backend.committedWrites
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<24 {
                    let message = userMessage("hello \(index)", turn: "t\(index)", at: Int64(1000 + index))
                    group.addTask {
                        let conversation = try await store.startTurn(TurnStart(
                            ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_p\(index)", title: nil, model: "m",
                            messages: [message], now: Int64(1000 + index)))
                        try await store.saveAssistantMessage(StoredMessage(
                            id: "msg_p\(index)", conversationID: conversation.id, ownerID: localOwnerID, role: "assistant",
                            content: "answer \(index)", parts: .array([.string("part")]), metadata: ["index": .int(index)],
                            usage: Usage(promptTokens: 10, completionTokens: index), turnID: "t\(index)",
                            createdAt: Int64(1000 + index), updatedAt: Int64(1000 + index)))
                    }
                    group.addTask { _ = try await store.conversations(ownerID: localOwnerID, limit: 50, updatedBefore: nil) }
                }
                try await group.waitForAll()
            }
            #expect(backend.committedWrites - before == 48)
            let conversations = try await store.conversations(ownerID: localOwnerID, limit: 50, updatedBefore: nil)
            #expect(conversations.count == 24)
            for index in [0, 11, 23] {
                let messages = try await store.messages(conversationID: "conv_p\(index)", ownerID: localOwnerID)
                #expect(messages.map(\.content) == ["hello \(index)", "answer \(index)"])
                #expect(messages.last?.usage == Usage(promptTokens: 10, completionTokens: index))
                #expect(messages.last?.metadata == ["index": .int(index)])
                #expect(messages.last?.parts == .array([.string("part")]))
            }
        }
    }

    @Test(arguments: Dialect.allCases)
    func concurrentTurnsOfOneConversationKeepTheirMessagesInOrder(_ dialect: Dialect) async throws {
        // All in the same millisecond, so only seq orders them: each turn's two messages must stay adjacent.
        try await withStore(dialect) { store, _ in
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_s", title: nil, model: "m", messages: [userMessage("start", turn: "t0", at: 5000)], now: 5000))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 1...8 {
                    let messages = [userMessage("\(index)a", turn: "t\(index)", at: 5000), userMessage("\(index)b", turn: "t\(index)", at: 5000)]
                    group.addTask {
                        _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: "conv_s", newConversationID: "unused", title: nil, model: "m", messages: messages, now: 5000))
                    }
                }
                try await group.waitForAll()
            }
            let contents = try await store.messages(conversationID: "conv_s", ownerID: localOwnerID).map(\.content)
            #expect(contents.count == 17)
            #expect(contents.first == "start")
            let pairs = stride(from: 1, to: contents.count - 1, by: 2).map { [contents[$0], contents[$0 + 1]] }
            #expect(pairs.allSatisfy { $0[0].hasSuffix("a") && $0[1] == $0[0].dropLast() + "b" })
        }
    }
}
