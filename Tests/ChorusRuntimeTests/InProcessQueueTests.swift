import ChorusCore
import ChorusRuntime
import Testing

@Suite struct InProcessQueueTests {
    /// A fresh entry's first delivery carries the task it was queued with; a redelivery never does
    /// (the task may have run since), nor does an entry queued without it.
    @Test func onlyAFirstDeliveryCarriesTheTask() async throws {
        let queue = InProcessQueue()
        let task = TaskRecord(
            id: "task_c", ownerID: "u", type: "chat", model: "m", params: .object(["history": .array([])]),
            conversationID: "conv_c", createdAt: 5, updatedAt: 5)
        await queue.enqueue(taskID: task.id, model: "m", carrying: task)
        try await queue.enqueue(taskID: "task_plain", model: "m")
        let first = try await queue.receive(models: ["m"], consumer: "w1", count: 10)
        #expect(first.map(\.taskID) == ["task_c", "task_plain"])
        #expect(first.first?.carried == task)
        #expect(first.last?.carried == nil)
        let again = await queue.reclaim(models: ["m"], consumer: "w2", minIdleMilliseconds: 0, count: 10)
        #expect(again.map(\.taskID) == ["task_c", "task_plain"])
        #expect(again.allSatisfy { $0.carried == nil && $0.deliveries == 2 })
    }

    @Test func theCarriedCopyRoundTripsThroughJSON() throws {
        let task = TaskRecord(
            id: "task_j", ownerID: "u", batchID: "batch_1", type: "chat", model: "m",
            params: .object(["body": .object(["temperature": .double(0.5)]), "billing": .null]),
            conversationID: "conv_j", createdAt: 1_700_000_000_123, updatedAt: 1_700_000_000_123)
        let decoded = TaskRecord(carried: try JSONValue.parse(Array(try task.carried.encoded())))
        #expect(decoded == task)
        #expect(TaskRecord(carried: .object(["id": .string("task_x")])) == nil, "a copy missing fields is not used")
    }
}
