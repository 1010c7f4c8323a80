import ChorusRedis
import Synchronization
import Testing

@Suite("RedisClient pool against redis-server")
struct RedisClientTests {
    @Test("200 concurrent tasks share a pool of 4 connections")
    func concurrentUse() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.connectionCount = 4
            configuration.clientName = "pool-test"
            try await withRunningClient(configuration) { client in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for task in 0..<200 {
                        group.addTask {
                            for step in 0..<10 {
                                try await client.incrby("total", 1)
                                try await client.set("task:\(task)", to: "\(step)")
                                #expect(try await client.get("task:\(task)") == "\(step)")
                            }
                            let replies = try await client.pipeline([["INCR", "pipelined"], ["GET", "task:\(task)"]])
                            #expect(replies[1] == "9")
                        }
                    }
                    try await group.waitForAll()
                }
                #expect(try await client.get("total") == "2000")
                #expect(try await client.get("pipelined") == "200")
                let clients = try await client.send("CLIENT", "LIST").string ?? ""
                let poolConnections = clients.split(whereSeparator: \.isNewline).filter { $0.contains("name=pool-test") }
                #expect(poolConnections.count == 4)
            }
        }
    }

    @Test("a blocking XREADGROUP on a dedicated connection does not hold up other commands")
    func blockingReadDoesNotStarve() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.connectionCount = 1  // one shared connection: a blocked read on it would stop everything
            configuration.commandTimeout = .seconds(5)
            let serverConfiguration = server.configuration
            try await withRunningClient(configuration) { client in
                try await client.xgroupCreate("jobs", group: "workers")
                let reader = Task {
                    let started = ContinuousClock.now
                    let entries = try await client.xreadgroup(group: "workers", consumer: "w1", key: "jobs", count: 1, block: .seconds(20))
                    return (entries, ContinuousClock.now - started)
                }
                #expect(try await eventually { try await clientsInfo("blocked_clients", serverConfiguration) == 1 })

                for index in 0..<100 {
                    #expect(try await client.incrby("meanwhile", 1) == index + 1)
                }
                let id = try await client.xadd("jobs", fields: [("task", "t-1")])
                let (entries, waited) = try await reader.value
                #expect(entries.map(\.id) == [id])
                #expect(entries.first?["task"] == "t-1")
                #expect(waited < .seconds(20))

                // An empty block returns no entries (RESP null) after the block time.
                let none = try await client.xreadgroup(group: "workers", consumer: "w1", key: "jobs", block: .milliseconds(100))
                #expect(none.isEmpty)
            }
        }
    }

    @Test("dedicated leases are exclusive, bounded and queue when all are taken")
    func dedicatedLeases() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.maxDedicatedConnections = 2
            try await withRunningClient(configuration) { client in
                let active = ConcurrencyGauge()
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<6 {
                        group.addTask {
                            try await client.withDedicatedConnection(timeout: .seconds(20)) { connection in
                                active.enter()
                                defer { active.leave() }
                                _ = try await connection.send(["BLPOP", "nothing", "0.2"], timeout: .seconds(5))
                                return connection.id
                            }
                        }
                    }
                    let ids = try await group.reduce(into: Set<Int>()) { $0.insert($1) }
                    #expect(ids.count <= 2)  // connections are reused, never more than the maximum
                }
                #expect(active.peak == 2)

                // All leased for longer than a waiter's timeout: it fails without sending anything.
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 {
                        group.addTask {
                            try await client.withDedicatedConnection { connection in
                                _ = try await connection.send(["BLPOP", "nothing", "1"], timeout: .seconds(5))
                            }
                        }
                    }
                    try await Task.sleep(for: .milliseconds(200))
                    await #expect {
                        try await client.withDedicatedConnection(timeout: .milliseconds(100)) { _ in }
                    } throws: { error in
                        if case .connectionFailed = error as? RedisError { return true }
                        return false
                    }
                    try await group.waitForAll()
                }
                let pong = try await client.withDedicatedConnection { connection in
                    try await connection.ping()
                }
                #expect(pong == "PONG")
            }
        }
    }

    @Test("an overdue command on a shared connection times out, and the pool reconnects")
    func timeoutOnSharedConnection() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.connectionCount = 1
            try await withRunningClient(configuration) { client in
                // Connected first (with a generous timeout): only the overdue reply is timed.
                #expect(try await client.ping(timeout: .seconds(10)) == "PONG")
                await #expect(throws: RedisError.timeout) {
                    try await client.send(["BLPOP", "never-filled", "30"], timeout: .milliseconds(300))
                }
                // The poisoned connection was closed; the next command waits for the fresh one.
                let pong = try await client.ping()
                #expect(pong == "PONG")
                let value = try await client.incrby("after-timeout", 5)
                #expect(value == 5)
            }
        }
    }

    @Test(
        "redis-server restarts mid-test: the client reconnects with backoff and later commands succeed",
        arguments: [RedisServerProcess.StopMode.shutdown, .kill]
    )
    func reconnectAfterRestart(stopMode: RedisServerProcess.StopMode) async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.connectionCount = 2
            configuration.commandTimeout = .seconds(15)
            configuration.reconnectBackoff = .init(initial: .milliseconds(50), maximum: .milliseconds(500))
            try await withRunningClient(configuration) { client in
                try await client.set("before", to: "1")
                #expect(try await client.get("before") == "1")

                await server.stop(stopMode)

                // Until the client has seen the connections drop, a command can still go out on a dead
                // socket and fail with .connectionClosed or .timeout (outcome unknown). Once it has, commands are not
                // sent while the server is down: a short timeout fails with .connectionFailed.
                let noticed = try await eventually {
                    do {
                        try await client.ping(timeout: .milliseconds(200))
                        return false
                    } catch RedisError.connectionFailed {
                        return true
                    } catch RedisError.connectionClosed, RedisError.timeout {
                        return false
                    }
                }
                #expect(noticed)
                // A longer timeout waits for the reconnect.
                let waiting = Task { try await client.incrby("after", 1) }
                let blockingRead = Task {
                    try await client.xread(key: "events", after: "0", block: .milliseconds(100))
                }
                try await Task.sleep(for: .seconds(1))  // several failed attempts, backing off

                try await server.start()

                #expect(try await waiting.value == 1)  // the data went with the old process
                #expect(try await blockingRead.value.isEmpty)
                #expect(try await client.get("before") == nil)
                for index in 1...20 {
                    #expect(try await client.incrby("after", 1) == index + 1)
                }
                let pong = try await client.withDedicatedConnection { connection in
                    try await connection.ping()
                }
                #expect(pong == "PONG")
            }
        }
    }

    @Test("cancelling a blocked XREADGROUP returns at once and drops its dedicated connection")
    func cancelBlockedRead() async throws {
        try await withRedisServer { server in
            let serverConfiguration = server.configuration
            try await withRunningClient(server.configuration) { client in
                try await client.xgroupCreate("jobs", group: "workers")
                let reader = Task {
                    try await client.xreadgroup(group: "workers", consumer: "w1", key: "jobs", block: .seconds(30))
                }
                #expect(try await eventually { try await clientsInfo("blocked_clients", serverConfiguration) == 1 })
                reader.cancel()
                await #expect(throws: CancellationError.self) { try await reader.value }
                // The lease closed the connection rather than return it still blocked on the server.
                #expect(try await eventually { try await clientsInfo("blocked_clients", serverConfiguration) == 0 })
                let entries = try await client.xreadgroup(group: "workers", consumer: "w1", key: "jobs", block: .milliseconds(10))
                #expect(entries.isEmpty)
            }
        }
    }

    @Test("after shutdown every call fails with .clientShutdown; leased connections are closed")
    func shutdown() async throws {
        try await withRedisServer { server in
            let client = RedisClient(configuration: server.configuration)
            let runner = Task { try await client.run() }
            #expect(try await client.ping() == "PONG")
            let blocked = Task {
                try await client.withDedicatedConnection { connection in
                    try await connection.send(["BLPOP", "nothing", "0"], timeout: .seconds(60))
                }
            }
            #expect(try await eventually { try await clientsInfo("blocked_clients", server.configuration) == 1 })
            runner.cancel()
            try await runner.value
            await #expect(throws: RedisError.connectionClosed) { try await blocked.value }
            await #expect(throws: RedisError.clientShutdown) { try await client.ping() }
            await #expect(throws: RedisError.clientShutdown) { try await client.withDedicatedConnection { _ in } }
            #expect(try await eventually { try await clientsInfo("connected_clients", server.configuration) == 1 })
        }
    }

    @Test("commands sent before run() wait for the first connection")
    func commandsBeforeRun() async throws {
        try await withRedisServer { server in
            let client = RedisClient(configuration: server.configuration)
            let early = Task { try await client.incrby("early", 2) }
            try await Task.sleep(for: .milliseconds(100))
            let runner = Task { try await client.run() }
            #expect(try await early.value == 2)
            runner.cancel()
            try await runner.value
        }
    }
}

/// Counts how many tasks are inside a section at once, and the most there ever were.
final class ConcurrencyGauge: Sendable {
    private let state = Mutex((now: 0, peak: 0))

    func enter() {
        self.state.withLock { state in
            state.now += 1
            state.peak = max(state.peak, state.now)
        }
    }

    func leave() {
        self.state.withLock { $0.now -= 1 }
    }

    var peak: Int { self.state.withLock { $0.peak } }
}
