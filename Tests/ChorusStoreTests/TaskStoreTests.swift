import ChorusCore
import ChorusStore
import Foundation
import Testing

/// The task queries, on SQLite and PostgreSQL alike (part of the store suite, which owns the server).
extension ConversationStoreTests {
    private func task(_ id: String, owner: String = localOwnerID, at time: Int64 = 1000) -> TaskRecord {
        TaskRecord(id: id, ownerID: owner, type: "chat", model: "m", params: .object(["body": .object([:])]), conversationID: nil, createdAt: time, updatedAt: time)
    }

    @Test(arguments: Dialect.allCases)
    func aTaskIsClaimedOnceUntilItsLeasePasses(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            try await tasks.create(batch: nil, tasks: [task("task_1")])
            let first = try await tasks.claim(taskID: "task_1", workerID: "w1", leaseUntil: 10_000, now: 2000)
            #expect(first?.state == .started)
            #expect(first?.attempts == 1)
            #expect(try await tasks.claim(taskID: "task_1", workerID: "w2", leaseUntil: 11_000, now: 3000) == nil, "w1's lease is valid")
            let renewedCancel = try await tasks.renewLeases(workerID: "w1", taskIDs: ["task_1"], leaseUntil: 20_000)
            #expect(renewedCancel.isEmpty)
            #expect(try await tasks.claim(taskID: "task_1", workerID: "w2", leaseUntil: 30_000, now: 15_000) == nil, "renewed")
            let takeover = try await tasks.claim(taskID: "task_1", workerID: "w2", leaseUntil: 40_000, now: 25_000)
            #expect(takeover?.workerID == "w2")
            #expect(takeover?.attempts == 2)
            // What the admin console shows under each worker: the tasks held now, by their holder.
            try await tasks.create(batch: nil, tasks: [task("task_waiting")])
            #expect(try await tasks.runningTasks().map { [$0.id, $0.workerID] } == [["task_1", "w2"]])
            #expect(try await tasks.finish(taskID: "task_1", workerID: "w1", state: .success, result: .string("late"), error: nil, now: 26_000) == false, "a worker that lost the task cannot finish it")
            #expect(try await tasks.finish(taskID: "task_1", workerID: "w2", state: .success, result: .string("done"), error: nil, now: 27_000))
            let done = try await tasks.task(id: "task_1", ownerID: nil)
            #expect(done?.state == .success)
            #expect(done?.result == .string("done"))
            #expect(try await tasks.runningTasks().isEmpty, "an ended task is held by no one")
            #expect(try await tasks.claim(taskID: "task_1", workerID: "w3", leaseUntil: 99_000, now: 90_000) == nil, "an ended task is never claimed again")
        }
    }

    @Test(arguments: Dialect.allCases)
    func aClaimThatReturnsOnlyItsAttemptsDecidesAsTheFullOne(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            try await tasks.create(batch: nil, tasks: [task("task_a"), task("task_c")])
            #expect(try await tasks.claimAttempts(taskID: "task_a", workerID: "w1", leaseUntil: 10_000, now: 2000) == 1)
            let claimed = try await tasks.task(id: "task_a", ownerID: nil)
            #expect(claimed?.state == .started)
            #expect(claimed?.workerID == "w1")
            #expect(claimed?.leaseUntil == 10_000)
            #expect(try await tasks.claimAttempts(taskID: "task_a", workerID: "w2", leaseUntil: 11_000, now: 3000) == nil, "w1's lease is valid")
            #expect(try await tasks.claimAttempts(taskID: "task_a", workerID: "w2", leaseUntil: 40_000, now: 25_000) == 2, "after the lease passed")
            #expect(try await tasks.task(id: "task_a", ownerID: nil)?.workerID == "w2")
            _ = try await tasks.requestCancel(taskID: "task_c", ownerID: nil)
            #expect(try await tasks.claimAttempts(taskID: "task_c", workerID: "w1", leaseUntil: 10_000, now: 2000) == nil, "a cancelled task is never claimed")
            #expect(try await tasks.claimAttempts(taskID: "task_missing", workerID: "w1", leaseUntil: 10_000, now: 2000) == nil)
        }
    }

    @Test(arguments: Dialect.allCases)
    func cancellationIsImmediateWhenPendingAndFlaggedWhenRunning(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            try await tasks.create(batch: nil, tasks: [task("task_p"), task("task_r"), task("task_x", owner: "alice")])
            #expect(try await tasks.requestCancel(taskID: "task_p", ownerID: localOwnerID)?.state == .cancelled)
            _ = try await tasks.claim(taskID: "task_r", workerID: "w1", leaseUntil: .max, now: 2000)
            let running = try await tasks.requestCancel(taskID: "task_r", ownerID: localOwnerID)
            #expect(running?.state == .started)
            #expect(running?.cancelRequested == true)
            #expect(try await tasks.cancelRequested(taskIDs: ["task_r", "task_p"]) == ["task_r", "task_p"])
            #expect(try await tasks.requestCancel(taskID: "task_x", ownerID: localOwnerID) == nil, "another owner's task is not found")
            #expect(try await tasks.task(id: "task_x", ownerID: nil)?.cancelRequested == false)
        }
    }

    @Test(arguments: Dialect.allCases)
    func requeueCandidatesAreOldPendingOrAbandonedTasks(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            try await tasks.create(batch: nil, tasks: [task("task_old", at: 1000), task("task_new", at: 9000), task("task_dead", at: 1000), task("task_alive", at: 1000)])
            _ = try await tasks.claim(taskID: "task_dead", workerID: "w1", leaseUntil: 4000, now: 2000)
            _ = try await tasks.claim(taskID: "task_alive", workerID: "w2", leaseUntil: 50_000, now: 2000)
            let ids = Set(try await tasks.tasksToRequeue(enqueuedBefore: 5000, now: 10_000, limit: 10).map(\.id))
            #expect(ids == ["task_old", "task_dead"])
            try await tasks.markEnqueued(taskIDs: ["task_old"], at: 10_000)
            #expect(Set(try await tasks.tasksToRequeue(enqueuedBefore: 5000, now: 10_000, limit: 10).map(\.id)) == ["task_dead"])
        }
    }

    @Test(arguments: Dialect.allCases)
    func idempotencyKeysDeadLettersAndFiles(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let tasks = SQLTaskStore(backend: backend)
            #expect(try await tasks.beginIdempotent(ownerID: "o", key: "k", requestHash: "h1", now: 1) == .proceed)
            #expect(try await tasks.beginIdempotent(ownerID: "o", key: "k", requestHash: "h1", now: 2) == .inFlight)
            #expect(try await tasks.beginIdempotent(ownerID: "o", key: "k", requestHash: "h2", now: 2) == .mismatch)
            #expect(try await tasks.beginIdempotent(ownerID: "other", key: "k", requestHash: "h2", now: 2) == .proceed, "keys are per owner")
            try await tasks.completeIdempotent(ownerID: "o", key: "k", status: 202, body: "{}")
            #expect(try await tasks.beginIdempotent(ownerID: "o", key: "k", requestHash: "h1", now: 3) == .replay(status: 202, body: "{}"))
            try await tasks.abandonIdempotent(ownerID: "other", key: "k")
            #expect(try await tasks.beginIdempotent(ownerID: "other", key: "k", requestHash: "h3", now: 4) == .proceed, "an abandoned key is free again")

            try await tasks.recordDeadLetter(DeadLetter(id: "dl_1", stream: "m", entryID: "1-0", taskID: nil, payload: "junk", reason: "malformed", deliveries: 1, createdAt: 5))
            #expect(try await tasks.deadLetters(limit: 10).map(\.reason) == ["malformed"])

            let bytes: [UInt8] = [0, 1, 2, 255, 10, 13]
            try await tasks.save(file: StoredFile(id: "file_1", ownerID: "o", filename: "b.bin", contentType: "text/plain", size: bytes.count, sha256: SHA256.hex(bytes), content: bytes, createdAt: 6))
            #expect(try await tasks.file(id: "file_1", ownerID: "o")?.content == bytes)
            #expect(try await tasks.file(id: "file_1", ownerID: "someone-else") == nil)
        }
    }
}
