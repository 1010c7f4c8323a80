import ChorusCore
import Testing

@testable import ChorusRuntime

/// Following a task on the embedded bus: batches, keep-alive ticks and ending early. The Redis bus
/// is followed end to end in tests/e2e (the distributed shape).
@Suite("Task event followers")
struct TaskEventBusTests {
    func answer(_ seq: Int, _ task: String = "task_a") -> TaskEvent {
        TaskEvent(seq: seq, taskID: task, kind: .answer, token: "t\(seq) ")
    }

    func finish(_ seq: Int, _ task: String = "task_a") -> TaskEvent {
        TaskEvent(seq: seq, taskID: task, kind: .finish, data: .object(["content": .string("done")]))
    }

    /// Every item until the follower ends, or a failed expectation after `limit` items.
    func collect(_ follower: TaskFollower, limit: Int = 100) async throws -> [TaskFollowItem] {
        var items: [TaskFollowItem] = []
        for try await item in follower.items {
            items.append(item)
            if items.count == limit { break }
        }
        return items
    }

    func batches(_ items: [TaskFollowItem]) -> [[Int]] {
        items.compactMap { item in
            guard case .events(let events) = item else { return nil }
            return events.map(\.seq)
        }
    }

    @Test("what exists is replayed in one batch after the given seq, live events follow, the terminal one ends it")
    func replayThenLive() async throws {
        let bus = InProcessEventBus()
        for seq in 1...3 { try await bus.publish(answer(seq)) }
        let follower = bus.follow(taskID: "task_a", after: 1)
        var iterator = follower.items.makeAsyncIterator()
        // The replay and the registration are one step on the bus: after the replay, the live events reach it.
        #expect(batches([try #require(try await iterator.next())]) == [[2, 3]])
        try await bus.publish(answer(1, "task_b"))  // another task's events never reach this follower
        try await bus.publish(answer(4))
        try await bus.publish(finish(5))
        var rest: [TaskFollowItem] = []
        while let item = try await iterator.next() { rest.append(item) }
        #expect(batches(rest) == [[4], [5]])
    }

    @Test("a follower of an ended task gets the rest at once and ends")
    func endedTask() async throws {
        let bus = InProcessEventBus()
        for seq in 1...2 { try await bus.publish(answer(seq)) }
        try await bus.publish(finish(3))
        #expect(batches(try await collect(bus.follow(taskID: "task_a", after: 0))) == [[1, 2, 3]])
        #expect(batches(try await collect(bus.follow(taskID: "task_a", after: 3))) == [])
    }

    @Test("a quiet task gets keep-alive ticks from an event-loop timer, and its events after them")
    func keepAliveWhileQuiet() async throws {
        let bus = InProcessEventBus()
        let follower = bus.follow(taskID: "task_a", after: 0, keepAlive: .milliseconds(40))
        let items = Task { try await collect(follower) }
        try await Task.sleep(for: .milliseconds(300))
        try await bus.publish(answer(1))
        try await bus.publish(finish(2))
        let seen = try await items.value
        let ticks = seen.prefix { if case .keepAlive = $0 { true } else { false } }.count
        #expect(ticks >= 2, "\(seen)")
        #expect(batches(seen) == [[1], [2]])
        // The terminal event ends the stream: no tick after it (however long the test was starved
        // between the two publishes, which may let ticks in between them).
        #expect(batches([try #require(seen.last)]) == [[2]], "\(seen)")
    }

    @Test("end() finishes a follower of a running task at once")
    func endStopsFollowing() async throws {
        let bus = InProcessEventBus()
        try await bus.publish(answer(1))
        let follower = bus.follow(taskID: "task_a", after: 0, keepAlive: .milliseconds(20))
        var iterator = follower.items.makeAsyncIterator()
        // The replay comes first, after as many keep-alive ticks as the machine's load lets pass
        // (bounded, so a replay that never comes fails instead of hanging).
        var seen: [TaskFollowItem] = []
        while seen.count < 500, let item = try await iterator.next() {
            seen.append(item)
            if case .events = item { break }
        }
        #expect(batches(seen) == [[1]], "\(seen.count) items")
        // The task is still running (no terminal event), yet the stream ends.
        follower.end()
        var ended = false
        var after = 0
        while after < 250 {
            guard let item = try await iterator.next() else {
                ended = true
                break
            }
            if case .events(let events) = item { Issue.record("events after end(): \(events)") }
            after += 1
        }
        #expect(ended, "still open after \(after) keep-alive ticks")
    }

    @Test("a forgotten task starts a fresh sequence, and an expiry set before it drops nothing of the new one")
    func forgetStartsAFreshSequence() async throws {
        let bus = InProcessEventBus()
        try await bus.publish(answer(1))
        try await bus.publish(finish(2))
        await bus.expire(taskID: "task_a", afterSeconds: 1)
        await bus.forget(taskID: "task_a")
        #expect(await bus.lastSequence(taskID: "task_a") == 0)
        try await bus.publish(answer(1))
        try await Task.sleep(for: .milliseconds(1500))
        #expect(await bus.lastSequence(taskID: "task_a") == 1, "the old expiry must not drop the replayed run's events")
        try await bus.publish(finish(2))
        #expect(batches(try await collect(bus.follow(taskID: "task_a", after: 0))) == [[1, 2]])
    }
}
