import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// `/v1/admin/dead-letters` in embedded mode: inspect, replay (the task then succeeds), delete, purge.
@Suite struct DeadLettersTests {
    @Test func aDeadLetteredTaskIsReplayedAsAFreshAttemptAndSucceeds() async throws {
        try await Harness.run { h in
            // A real chat task's parameters, for a task that three workers then abandoned.
            let submitted = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"replay me [[fake tokens=3]]","models":["fake"]}"#))
            let first = try #require(submitted["task_ids"]?.arrayValue?.first?.stringValue)
            #expect(try await h.waitForTask(first)["state"] == .string("SUCCESS"))
            let template = try #require(try await h.tasks.task(id: first, ownerID: nil))
            let now = nowMilliseconds()
            try await h.tasks.create(batch: nil, tasks: [TaskRecord(
                id: "task_abandoned", ownerID: localOwnerID, type: "chat", model: "fake", params: template.params,
                conversationID: template.conversationID, createdAt: now, updatedAt: now)])
            for worker in ["w1", "w2", "w3"] {
                #expect(try await h.tasks.claim(taskID: "task_abandoned", workerID: worker, leaseUntil: now - 1, now: now) != nil)
            }
            try await h.queue.enqueue(taskID: "task_abandoned", model: "fake")
            #expect(try await h.waitForTask("task_abandoned")["state"] == .string("FAILURE"))

            let letters = try h.json(try await h.get("/v1/admin/dead-letters?queue=fake"))["data"]?.arrayValue ?? []
            let id = try #require(letters.first?["id"]?.stringValue)
            let shown = try h.json(try await h.get("/v1/admin/dead-letters/\(id)"))
            #expect(shown["payload"] == .string("task_id=task_abandoned"))
            #expect(shown["task"]?["state"] == .string("FAILURE"))
            #expect(try h.json(try await h.get("/v1/admin/dead-letters?queue=other"))["data"] == .array([]))

            let replayed = try await h.post("/v1/admin/dead-letters/\(id)/replay", json: "")
            #expect(replayed.status == .ok)
            #expect(try h.json(replayed)["task"]?["state"] == .string("PENDING"))
            let task = try await h.waitForTask("task_abandoned")
            #expect(task["state"] == .string("SUCCESS"))
            #expect(task["attempts"] == .int(1))
            #expect(task["result"]?["content"] == .string("t0 t1 t2 "))
            // A fresh sequence of events: from 1 to the finish, the failure's events gone.
            let events = try await h.taskEvents("task_abandoned")
            #expect(events.map(\.0) == (1...events.count).map(String.init))
            #expect(events.last?.1["type"] == .string("finish"))
            #expect(events.allSatisfy { $0.1["type"] != .string("error") })
            #expect(try await h.get("/v1/admin/dead-letters/\(id)").status == .notFound)
            #expect(try await h.post("/v1/admin/dead-letters/\(id)/replay", json: "").status == .notFound)
        }
    }

    @Test func whatCannotBeReplayedIsRefusedAndLettersAreDeletedOrPurged() async throws {
        try await Harness.run { h in
            for index in 0..<3 { try await h.queue.enqueue(taskID: "task_unknown_\(index)", model: "fake") }
            #expect(try await eventually { try h.json(try await h.get("/v1/admin/dead-letters"))["data"]?.arrayValue?.count == 3 })
            let ids = (try h.json(try await h.get("/v1/admin/dead-letters"))["data"]?.arrayValue ?? []).compactMap { $0["id"]?.stringValue }
            let refused = try await h.post("/v1/admin/dead-letters/\(ids[0])/replay", json: "")
            #expect(refused.status == .conflict)
            #expect(try h.json(refused)["error"]?["code"] == .string("dead_letter_not_replayable"))
            #expect(try await h.get("/v1/admin/dead-letters/\(ids[0])").status == .ok, "a refused replay keeps the letter")

            let unsaid = try await h.client.execute(uri: "/v1/admin/dead-letters", method: .delete)
            #expect(unsaid.status == .badRequest)
            let one = try await h.client.execute(uri: "/v1/admin/dead-letters/\(ids[0])", method: .delete)
            #expect(try h.json(one)["deleted"] == .int(1))
            #expect(try await h.client.execute(uri: "/v1/admin/dead-letters/\(ids[0])", method: .delete).status == .notFound)
            let all = try await h.client.execute(uri: "/v1/admin/dead-letters?all=true", method: .delete)
            #expect(try h.json(all)["deleted"] == .int(2))
            #expect(try h.json(try await h.get("/v1/admin/dead-letters"))["data"] == .array([]))
        }
    }
}
