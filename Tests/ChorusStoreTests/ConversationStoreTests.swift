import ChorusCore
import ChorusStore
import Foundation
import Logging
import Testing

/// The store suite runs against a real SQLite file (and, with the distributed shape, PostgreSQL).
@Suite struct ConversationStoreTests {
    private func withStore(_ body: (SQLConversationStore, any SQLBackend) async throws -> Void) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let backend = try await SQLiteBackend.open(path: folder.appendingPathComponent("test.sqlite").path, logger: Logger(label: "test"))
        try await Migrator(backend: backend, logger: Logger(label: "test")).migrate()
        do {
            try await body(SQLConversationStore(backend: backend), backend)
        } catch {
            try await backend.close()
            throw error
        }
        try await backend.close()
    }

    private func userMessage(_ text: String, turn: String, owner: String = localOwnerID, at time: Int64 = nowMilliseconds()) -> StoredMessage {
        StoredMessage(id: Identifier.make("msg_"), conversationID: "", ownerID: owner, role: "user", content: text, turnID: turn, createdAt: time, updatedAt: time)
    }

    private func assistant(_ id: String, in conversation: String, turn: String, content: String, status: MessageStatus, at time: Int64) -> StoredMessage {
        StoredMessage(id: id, conversationID: conversation, ownerID: localOwnerID, role: "assistant", content: content, reasoning: "thought", status: status, turnID: turn, createdAt: time, updatedAt: time)
    }

    @Test func migrationsAreIdempotent() async throws {
        try await withStore { _, backend in
            let applied = try await Migrator(backend: backend, logger: Logger(label: "test")).migrate()
            #expect(applied.isEmpty)
        }
    }

    @Test func aTurnCreatesTheConversationAndItsMessagesInOneWrite() async throws {
        try await withStore { store, backend in
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

    @Test func checkpointThenFinalIsOneAssistantRow() async throws {
        try await withStore { store, _ in
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

    @Test func aSecondAssistantRowForTheSameTurnIsRefused() async throws {
        try await withStore { store, _ in
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_c", title: nil, model: "m", messages: [userMessage("q", turn: "t1")], now: 1000))
            try await store.saveAssistantMessage(assistant("msg_1", in: "conv_c", turn: "t1", content: "a", status: .complete, at: 1000))
            await #expect(throws: (any Error).self) {
                try await store.saveAssistantMessage(assistant("msg_2", in: "conv_c", turn: "t1", content: "b", status: .complete, at: 1000))
            }
        }
    }

    @Test func historyIsTheLastNInOrder() async throws {
        try await withStore { store, _ in
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: "conv_d", title: nil, model: "m", messages: [userMessage("one", turn: "t1", at: 1000)], now: 1000))
            try await store.saveAssistantMessage(assistant("msg_a1", in: "conv_d", turn: "t1", content: "two", status: .complete, at: 1000))
            _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: "conv_d", newConversationID: "unused", title: nil, model: "m", messages: [userMessage("three", turn: "t2", at: 2000)], now: 2000))
            try await store.saveAssistantMessage(assistant("msg_a2", in: "conv_d", turn: "t2", content: "four", status: .complete, at: 2000))
            let last3 = try await store.history(conversationID: "conv_d", ownerID: localOwnerID, limit: 3)
            #expect(last3.map(\.content) == ["two", "three", "four"])
        }
    }

    @Test func anotherOwnersConversationIsNotFoundAndNothingIsWritten() async throws {
        try await withStore { store, backend in
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

    @Test func renameListAndDelete() async throws {
        try await withStore { store, _ in
            for (index, id) in ["conv_1", "conv_2", "conv_3"].enumerated() {
                _ = try await store.startTurn(TurnStart(ownerID: localOwnerID, conversationID: nil, newConversationID: id, title: id, model: "m", messages: [userMessage("hi", turn: "t\(index)")], now: Int64(1000 * (index + 1))))
            }
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 2, updatedBefore: nil).map(\.id) == ["conv_3", "conv_2"])
            #expect(try await store.conversations(ownerID: localOwnerID, limit: 2, updatedBefore: 2000).map(\.id) == ["conv_1"])
            let renamed = try await store.renameConversation(id: "conv_1", ownerID: localOwnerID, title: "Renamed")
            #expect(renamed?.title == "Renamed")
            #expect(try await store.deleteConversation(id: "conv_2", ownerID: localOwnerID))
            #expect(try await store.conversation(id: "conv_2", ownerID: localOwnerID) == nil)
            #expect(try await store.messages(conversationID: "conv_2", ownerID: localOwnerID).isEmpty)
        }
    }
}
