import ChorusCore
import ChorusStore
import Foundation
import Testing

/// The dead-letter table's replay, delete and purge, on SQLite and PostgreSQL alike (part of the
/// store suite, which owns the server).
extension ConversationStoreTests {
    private func letter(_ id: String, task: String?, stream: String = "m", at time: Int64 = 5) -> DeadLetter {
        DeadLetter(id: id, stream: stream, entryID: "\(id)-entry", taskID: task, payload: "task_id=\(task ?? "")", reason: "claimed 3 times without finishing", deliveries: 4, createdAt: time)
    }

    @Test(arguments: Dialect.allCases)
    func aReplayMakesTheTaskAFreshAttemptAndRemovesTheLetter(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            let record = TaskRecord(id: "task_f", ownerID: localOwnerID, type: "chat", model: "m", params: .object([:]), conversationID: nil, createdAt: 1, updatedAt: 1)
            try await tasks.create(batch: nil, tasks: [record])
            _ = try await tasks.claim(taskID: "task_f", workerID: "w1", leaseUntil: 100, now: 2)
            try await tasks.updateProgress(taskID: "task_f", workerID: "w1", current: 1, total: 2)
            #expect(try await tasks.finish(taskID: "task_f", workerID: nil, state: .failure, result: nil, error: .object(["message": .string("abandoned")]), now: 3))
            try await tasks.recordDeadLetter(letter("dl_f", task: "task_f"))

            guard case .replayed(let replayed, let task) = try await tasks.replayDeadLetter(id: "dl_f", now: 50) else {
                Issue.record("the dead letter was not replayed")
                return
            }
            #expect(replayed.id == "dl_f")
            #expect(task.state == .pending)
            #expect(task.attempts == 0)
            #expect(task.workerID == nil && task.leaseUntil == nil && task.error == nil && task.result == nil)
            #expect(task.progressCurrent == nil && task.finishedAt == nil && task.startedAt == nil)
            #expect(try await tasks.deadLetter(id: "dl_f") == nil)
            #expect(try await tasks.replayDeadLetter(id: "dl_f", now: 51) == nil, "gone")
            // The fresh attempt is claimed as a first one.
            #expect(try await tasks.claim(taskID: "task_f", workerID: "w2", leaseUntil: 200, now: 60)?.attempts == 1)
        }
    }

    @Test(arguments: Dialect.allCases)
    func aReplayWithNothingToRestartChangesNothing(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            let done = TaskRecord(id: "task_s", ownerID: localOwnerID, type: "chat", model: "m", params: .object([:]), conversationID: nil, createdAt: 1, updatedAt: 1)
            try await tasks.create(batch: nil, tasks: [done])
            _ = try await tasks.claim(taskID: "task_s", workerID: "w1", leaseUntil: 100, now: 2)
            #expect(try await tasks.finish(taskID: "task_s", workerID: "w1", state: .success, result: .string("ok"), error: nil, now: 3))
            try await tasks.recordDeadLetter(letter("dl_junk", task: nil))
            try await tasks.recordDeadLetter(letter("dl_gone", task: "task_missing"))
            try await tasks.recordDeadLetter(letter("dl_done", task: "task_s"))
            for id in ["dl_junk", "dl_gone", "dl_done"] {
                guard case .refused(let kept, let reason) = try await tasks.replayDeadLetter(id: id, now: 10) else {
                    Issue.record("\(id) was replayed")
                    continue
                }
                #expect(kept.id == id)
                #expect(!reason.isEmpty)
                #expect(try await tasks.deadLetter(id: id) != nil, "a refused replay keeps the letter")
            }
            #expect(try await tasks.task(id: "task_s", ownerID: nil)?.state == .success)
        }
    }

    @Test(arguments: Dialect.allCases)
    func deadLettersAreDeletedOneByOneByQueueOrAll(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            try await tasks.recordDeadLetter(letter("dl_1", task: nil, stream: "a", at: 1))
            try await tasks.recordDeadLetter(letter("dl_2", task: nil, stream: "a", at: 2))
            try await tasks.recordDeadLetter(letter("dl_3", task: nil, stream: "b", at: 3))
            try await tasks.recordDeadLetter(letter("dl_4", task: nil, stream: "b", at: 4))
            #expect(try await tasks.deadLetters(limit: 10).map(\.id) == ["dl_4", "dl_3", "dl_2", "dl_1"], "newest first")
            #expect(try await tasks.deadLetters(limit: 10, queue: "a").map(\.id) == ["dl_2", "dl_1"])
            #expect(try await tasks.deleteDeadLetter(id: "dl_1")?.entryID == "dl_1-entry")
            #expect(try await tasks.deleteDeadLetter(id: "dl_1") == nil)
            #expect(try await tasks.purgeDeadLetters(queue: "b").map(\.id).sorted() == ["dl_3", "dl_4"])
            #expect(try await tasks.deadLetters(limit: 10).map(\.id) == ["dl_2"])
            #expect(try await tasks.purgeDeadLetters(queue: nil).map(\.id) == ["dl_2"])
            #expect(try await tasks.counts().deadLetters == 0)
        }
    }
}
