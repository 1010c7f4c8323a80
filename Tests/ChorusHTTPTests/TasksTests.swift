import ChorusCore
import ChorusRuntime
import ChorusStore
import FakeUpstreamKit
import SQLKit
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// Asynchronous work in embedded mode: the in-process queue and worker, the same task code path
/// as the distributed shape.
@Suite struct TasksTests {
    @Test func aBatchFansOutAndEachAnswerIsStoredOnce() async throws {
        try await Harness.run { h in
            let response = try await h.post("/v1/batches", json: #"{"prompt":"hello [[fake tokens=4]]","models":["fake","fake2"]}"#)
            #expect(response.status == .accepted)
            let body = try h.json(response)
            #expect(body["message"] == .string("Tasks dispatched successfully"))
            let taskIDs = try #require(body["task_ids"]?.arrayValue?.compactMap { $0.stringValue })
            #expect(taskIDs.count == 2)
            for id in taskIDs {
                let task = try await h.waitForTask(id)
                #expect(task["state"] == .string("SUCCESS"), "\(task)")
                #expect(task["result"]?["content"] == .string("t0 t1 t2 t3 "))
            }
            let conversationID = try #require(body["conversation_id"]?.stringValue)
            let messages = try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID)
            #expect(messages.filter { $0.role == "user" }.count == 1, "the prompt is stored once")
            #expect(Set(messages.filter { $0.role == "assistant" }.compactMap(\.model)) == ["fake", "fake2"])
            #expect(messages.filter { $0.role == "assistant" }.count == 2)
            let batchID = try #require(body["batch_id"]?.stringValue)
            let batch = try h.json(try await h.get("/v1/batches/\(batchID)"))
            #expect(batch["status"] == .string("completed"))
        }
    }

    @Test func aNewConversationTravelsInItsTasksAndAFollowUpReadsTheStore() async throws {
        try await Harness.run { h in
            let first = try h.json(try await h.post("/v1/batches", json: #"{"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"first [[fake tokens=2]]"}],"models":["fake"]}"#))
            let firstID = try #require(first["task_ids"]?.arrayValue?.first?.stringValue)
            #expect(try await h.waitForTask(firstID)["state"] == .string("SUCCESS"))
            // The first task carried the new conversation's message, and the upstream got it.
            let carried = try #require(try await h.tasks.task(id: firstID, ownerID: nil)?.params["history"])
            #expect(carried == .array([.object(["role": .string("user"), "content": .string("first [[fake tokens=2]]")])]))
            let firstSent = try JSONValue.parse(Array(try #require(await h.stats.lastRequestBodies(1).first).utf8))
            #expect(firstSent["messages"]?.arrayValue?.map { $0["role"]?.stringValue ?? "" } == ["system", "user"])
            #expect(firstSent["messages"]?.arrayValue?.last?["content"] == .string("first [[fake tokens=2]]"))

            // A follow-up in the same conversation carries nothing: its worker reads the stored
            // history, with the first answer in it.
            let conversationID = try #require(first["conversation_id"]?.stringValue)
            let second = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"second [[fake tokens=2]]","models":["fake"],"conversation_id":"\#(conversationID)"}"#))
            let secondID = try #require(second["task_ids"]?.arrayValue?.first?.stringValue)
            #expect(try await h.waitForTask(secondID)["state"] == .string("SUCCESS"))
            #expect(try await h.tasks.task(id: secondID, ownerID: nil)?.params["history"] == nil)
            let secondSent = try JSONValue.parse(Array(try #require(await h.stats.lastRequestBodies(1).first).utf8))
            let sent = secondSent["messages"]?.arrayValue ?? []
            #expect(sent.map { $0["role"]?.stringValue ?? "" } == ["user", "assistant", "user"])
            #expect(sent.dropFirst().first?["content"] == .string("t0 t1 "))
        }
    }

    @Test func eventsReplayFromTheStartAndResumeAfterLastEventID() async throws {
        try await Harness.run { h in
            let body = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"x [[fake tokens=6 reasoning=2 rate=50]]","models":["fake"]}"#))
            let id = try #require(body["task_ids"]?.arrayValue?.first?.stringValue)
            let all = try await h.taskEvents(id)
            #expect(all.map(\.0) == (1...all.count).map(String.init), "ids are gapless sequence numbers")
            #expect(all.first?.1["type"] == .string("thinking"))
            #expect(all.last?.1["type"] == .string("finish"))
            #expect(all.last?.1["data"]?["content"] == .string("t0 t1 t2 t3 t4 t5 "))
            let answer = all.filter { $0.1["type"] == .string("answer") }.compactMap { $0.1["token"]?.stringValue }.joined()
            #expect(answer == "t0 t1 t2 t3 t4 t5 ")
            let resumed = try await h.taskEvents(id, lastEventID: "3")
            #expect(resumed.map(\.0) == all.dropFirst(3).map(\.0), "no gap, no duplicate")
            #expect(try await h.client.execute(uri: "/v1/tasks/\(id)/events", method: .get, headers: [HTTPField.Name("Last-Event-ID")!: "abc"]).status == .badRequest)
        }
    }

    @Test func cancelStopsTheUpstreamAndKeepsThePartial() async throws {
        try await Harness.run { h in
            let body = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"x [[fake tokens=200 rate=20]]","models":["fake"]}"#))
            let id = try #require(body["task_ids"]?.arrayValue?.first?.stringValue)
            // Wait until it streams.
            let deadline = ContinuousClock.now + .seconds(10)
            while try h.json(try await h.get("/v1/tasks/\(id)"))["state"] != .string("STARTED"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(300))
            let cancelled = try await h.post("/v1/tasks/\(id)/cancel", json: "{}")
            #expect(cancelled.status == .ok)
            let task = try await h.waitForTask(id)
            #expect(task["state"] == .string("CANCELLED"))
            let conversationID = try #require(body["conversation_id"]?.stringValue)
            let answer = try #require(try await h.assistantMessages(conversationID).first)
            #expect(answer.status == .partial)
            #expect(answer.metadata["reason"] == .string("cancelled"))
            #expect(answer.content.hasPrefix("t0 "))
            // The fake upstream notices the closed connection on its own event loop: allow it a moment.
            let closedBy = ContinuousClock.now + .seconds(3)
            while await h.stats.snapshot().streamsAbortedByClient == 0, ContinuousClock.now < closedBy {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(await h.stats.snapshot().streamsAbortedByClient == 1, "the upstream request was closed")
            let events = try await h.taskEvents(id)
            #expect(events.last?.1["type"] == .string("error"))
            #expect(events.last?.1["data"]?["type"] == .string("cancelled"))
        }
    }

    @Test func idempotencyKeysReplayRefuseAndConflict() async throws {
        try await Harness.run { h in
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "abc-1"]
            let first = try await h.post("/v1/batches", json: #"{"prompt":"once [[fake tokens=2]]","models":["fake"]}"#, headers: key)
            let again = try await h.post("/v1/batches", json: #"{"prompt":"once [[fake tokens=2]]","models":["fake"]}"#, headers: key)
            #expect(first.status == .accepted)
            #expect(again.status == .accepted)
            #expect(try h.json(again)["batch_id"] == (try h.json(first))["batch_id"])
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let other = try await h.post("/v1/batches", json: #"{"prompt":"different","models":["fake"]}"#, headers: key)
            #expect(other.status.code == 422)
            let taskCount = try await h.backend.database.raw("SELECT COUNT(*) AS n FROM tasks").first()?.decode(column: "n", as: Int.self)
            #expect(taskCount == 1)
            // In flight: a key whose first request has not answered yet.
            // The fingerprint of a request: method, path, content type and body.
            let json = #"{"prompt":"x","models":["fake"]}"#
            let fingerprint = SHA256.hex(Array("POST /v1/batches\napplication/json\(json)".utf8))
            #expect(try await h.tasks.beginIdempotent(ownerID: localOwnerID, key: "busy", requestHash: fingerprint, now: nowMilliseconds()) == .proceed)
            let busy = try await h.post("/v1/batches", json: json, headers: [HTTPField.Name("Idempotency-Key")!: "busy"])
            #expect(busy.status == .conflict)
        }
    }

    @Test func aMalformedOrUnknownEntryIsDeadLetteredAndTheWorkerCarriesOn() async throws {
        try await Harness.run { h in
            try await h.queue.enqueue(taskID: "task_does_not_exist", model: "fake")
            let body = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"after [[fake tokens=2]]","models":["fake"]}"#))
            let id = try #require(body["task_ids"]?.arrayValue?.first?.stringValue)
            #expect(try await h.waitForTask(id)["state"] == .string("SUCCESS"))
            let letters = try h.json(try await h.get("/v1/admin/dead-letters"))["data"]?.arrayValue ?? []
            #expect(letters.count == 1)
            #expect(letters.first?["task_id"] == .string("task_does_not_exist"))
        }
    }

    @Test func aTaskAbandonedByAsManyWorkersAsAllowedIsFailedAndDeadLettered() async throws {
        try await Harness.run { h in
            let now = nowMilliseconds()
            try await h.tasks.create(batch: nil, tasks: [TaskRecord(
                id: "task_abandoned", ownerID: localOwnerID, type: "chat", model: "fake", params: .object([:]),
                conversationID: "conv_none", createdAt: now, updatedAt: now)])
            // Three workers claimed it and died (their leases ran out).
            for worker in ["w1", "w2", "w3"] {
                #expect(try await h.tasks.claim(taskID: "task_abandoned", workerID: worker, leaseUntil: now - 1, now: now) != nil)
            }
            try await h.queue.enqueue(taskID: "task_abandoned", model: "fake")
            let task = try await h.waitForTask("task_abandoned")
            #expect(task["state"] == .string("FAILURE"))
            #expect(task["error"]?["code"] == .string("internal_error"))
            #expect(task["attempts"] == .int(4))
            let letters = try h.json(try await h.get("/v1/admin/dead-letters"))["data"]?.arrayValue ?? []
            #expect(letters.map { $0["task_id"] } == [.string("task_abandoned")])
            #expect(letters.first?["reason"] == .string("claimed 3 times without finishing"))
            #expect(await h.stats.snapshot().streamsStarted == 0)
        }
    }

    @Test func anEntryDeliveredTwiceRunsOnce() async throws {
        try await Harness.run { h in
            let body = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"twice [[fake tokens=3 rate=30]]","models":["fake"]}"#))
            let id = try #require(body["task_ids"]?.arrayValue?.first?.stringValue)
            try await h.queue.enqueue(taskID: id, model: "fake")
            let task = try await h.waitForTask(id)
            #expect(task["state"] == .string("SUCCESS"))
            #expect(task["attempts"] == .int(1))
            try await Task.sleep(for: .milliseconds(300))
            let conversationID = try #require(body["conversation_id"]?.stringValue)
            #expect(try await h.assistantMessages(conversationID).count == 1)
            #expect(await h.stats.snapshot().streamsStarted == 1)
        }
    }

    /// A new chat task's entry carries the task, and its worker begins the run (the upstream call)
    /// while the claim is on its way. Here the claim is held up behind a slow write, so the run is
    /// under way first; its events and its answer wait for the claim, and appear once. The wait
    /// (3 s) is longer than the model's between-token timeout (1 s): Chorus's own wait does not
    /// count as the upstream's silence.
    @Test func aRunBegunBeforeItsClaimWaitsForTheClaimAndThenCounts() async throws {
        try await Harness.run { h in
            let conversationID = try await Self.answeredConversation(h)
            let task = Self.carriedChatTask("task_early", conversationID: conversationID, prompt: "early [[fake tokens=4 rate=40]]")
            try await h.tasks.create(batch: nil, tasks: [task])
            let slowWrite = try await Self.holdWrites(h, for: .seconds(3))
            await h.queue.enqueue(taskID: task.id, model: "fake", carrying: task)
            #expect(try await eventually { await h.stats.snapshot().streamsStarted == 1 }, "the upstream call began")
            try await Task.sleep(for: .milliseconds(300))  // tokens arrive meanwhile (one every 25 ms)
            #expect(try await h.tasks.task(id: task.id, ownerID: nil)?.state == .pending, "the claim is not written yet")
            #expect(await h.bus.lastSequence(taskID: task.id) == 0, "no event before the claim")
            try await slowWrite.value
            let done = try await h.waitForTask(task.id)
            #expect(done["state"] == .string("SUCCESS"))
            #expect(done["attempts"] == .int(1))
            #expect(done["result"]?["content"] == .string("t0 t1 t2 t3 "))
            let events = try await h.taskEvents(task.id)
            #expect(events.map(\.0) == (1...events.count).map(String.init))
            #expect(events.filter { $0.1["type"] == .string("answer") }.count == 4)
            #expect(try await h.assistantMessages(conversationID).map(\.content) == ["t0 ", "t0 t1 t2 t3 "])
            #expect(await h.stats.snapshot().streamsStarted == 1)
        }
    }

    /// The same early run, but the claim is lost (a live worker holds the task): the run is
    /// stopped and leaves no trace, no event, no answer, and the task stays the other worker's.
    @Test func aRunBegunBeforeALostClaimLeavesNoTrace() async throws {
        try await Harness.run { h in
            let conversationID = try await Self.answeredConversation(h)
            let task = Self.carriedChatTask("task_held", conversationID: conversationID, prompt: "held [[fake tokens=50 rate=20]]")
            try await h.tasks.create(batch: nil, tasks: [task])
            let now = nowMilliseconds()
            #expect(try await h.tasks.claim(taskID: task.id, workerID: "w-live", leaseUntil: now + 60_000, now: now) != nil)
            let slowWrite = try await Self.holdWrites(h, for: .seconds(1))
            await h.queue.enqueue(taskID: task.id, model: "fake", carrying: task)
            // Tokens arrive while the claim waits behind the slow write …
            #expect(try await eventually { await h.stats.snapshot().streamsStarted == 1 })
            try await slowWrite.value
            // … and once it is lost, the upstream call is stopped.
            #expect(try await eventually { await h.stats.snapshot().streamsAbortedByClient == 1 })
            try await Task.sleep(for: .milliseconds(200))
            #expect(await h.bus.lastSequence(taskID: task.id) == 0, "no event")
            #expect(try await h.assistantMessages(conversationID).map(\.content) == ["t0 "], "no answer, not even a partial one")
            let stored = try #require(try await h.tasks.task(id: task.id, ownerID: nil))
            #expect(stored.workerID == "w-live")
            #expect(stored.state == .started)
            #expect(stored.attempts == 1)
            #expect(stored.result == nil && stored.error == nil)
        }
    }

    /// A stored conversation with one answered turn (its answer is "t0 "); the fake upstream's
    /// counters start again after it.
    static func answeredConversation(_ h: Harness) async throws -> String {
        let chat = try await h.chat("first [[fake tokens=1]]")
        let conversationID = try #require(chat.headers[HTTPField.Name("X-Conversation-Id")!])
        await h.stats.reset()
        return conversationID
    }

    /// A transaction that holds the database's writer for `duration`: writes issued meanwhile
    /// (a worker's claim) wait behind it.
    static func holdWrites(_ h: Harness, for duration: Duration) async throws -> Task<Void, any Error> {
        let write = Task { try await h.backend.transaction { _ in try await Task.sleep(for: duration) } }
        try await Task.sleep(for: .milliseconds(50))
        return write
    }

    /// A chat task as the batch endpoint writes it for a new conversation: its message in `history`.
    static func carriedChatTask(_ id: String, conversationID: String, prompt: String) -> TaskRecord {
        let now = nowMilliseconds()
        return TaskRecord(
            id: id, ownerID: localOwnerID, type: "chat", model: "fake",
            params: .object([
                "body": .object([:]), "instructions": .array([]),
                "history": .array([.object(["role": .string("user"), "content": .string(prompt)])]),
            ]),
            conversationID: conversationID, createdAt: now, updatedAt: now)
    }

    @Test func aGenericExportTaskReportsProgressAndResult() async throws {
        try await Harness.run { h in
            let chat = try await h.chat("export me [[fake tokens=2]]")
            let conversationID = try #require(chat.headers[HTTPField.Name("X-Conversation-Id")!])
            let submitted = try await h.post("/v1/tasks", json: #"{"type":"conversation.export","params":{"conversation_id":"\#(conversationID)","format":"markdown"}}"#)
            #expect(submitted.status == .accepted)
            let id = try #require(try h.json(submitted)["id"]?.stringValue)
            let task = try await h.waitForTask(id)
            #expect(task["state"] == .string("SUCCESS"))
            #expect(task["meta"]?["current"] == .int(2))
            #expect(task["result"]?["content"]?.stringValue?.contains("t0 t1 ") == true)
            #expect(try await h.post("/v1/tasks", json: #"{"type":"nope"}"#).status == .badRequest)
            #expect(try await h.get("/v1/tasks/task_missing").status == .notFound)
        }
    }

    @Test func theAsyncChatFormStoresFilesAndDispatches() async throws {
        try await Harness.run { h in
            let boundary = "XyZ"
            let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 1, 2, 3]
            var body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\ndescribe [[fake echo=1]]\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nfake, fake2\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
            body += png + Array("\r\n--\(boundary)--\r\n".utf8)
            let response = try await h.post("/v1/chat/completions", body: body, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"])
            #expect(response.status == .accepted)
            let json = try h.json(response)
            #expect(json["task_ids"]?.arrayValue?.count == 2)
            let id = try #require(json["task_ids"]?.arrayValue?.first?.stringValue)
            #expect(try await h.waitForTask(id)["state"] == .string("SUCCESS"))
            // The image reached the upstream as an OpenAI content part.
            let conversationID = try #require(json["conversation_id"]?.stringValue)
            let stored = try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID)
            let parts = stored.first?.parts?.arrayValue ?? []
            #expect(parts.contains { $0["type"] == .string("image_url") && $0["image_url"]?["url"]?.stringValue?.hasPrefix("data:image/png;base64,") == true })
            let bad = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nfake\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\nnot an image\r\n--\(boundary)--\r\n".utf8)
            let rejected = try await h.post("/v1/chat/completions", body: bad, headers: [.contentType: "multipart/form-data; boundary=\(boundary)"])
            #expect(rejected.status == .badRequest)
            #expect(try h.json(rejected)["error"]?["code"] == .string("invalid_file_type"))
        }
    }
}
