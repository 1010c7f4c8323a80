import ChorusRedis
import NIOCore
import Testing

@Suite("RedisConnection against redis-server")
struct RedisConnectionTests {
    @Test("1,000 pipelined INCRs on one connection come back in order", arguments: [RedisConfiguration.ProtocolVersion.resp2, .resp3])
    func pipelining(protocolVersion: RedisConfiguration.ProtocolVersion) async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.protocolVersion = protocolVersion
            let connection = try await RedisConnection.connect(configuration: configuration)
            #expect(connection.protocolVersion == protocolVersion)

            let replies = try await connection.pipeline(Array(repeating: ["INCR", "counter"], count: 1000))
            #expect(replies == (1...1000).map { RESPValue.integer($0) })

            // The same from 1,000 concurrent tasks on the one connection: every reply reaches its own caller.
            let values = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<1000 {
                    group.addTask { try await connection.incrby("concurrent", 1) }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(values.sorted() == Array(1...1000))
            await connection.close()
            #expect(!connection.isConnected)
        }
    }

    @Test("a server error surfaces as RedisError.server with its message; pipelines keep it in place")
    func serverError() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: server.configuration)
            await #expect(throws: RedisError.self) { try await connection.send("NOSUCHCOMMAND", "x") }
            do {
                _ = try await connection.send("NOSUCHCOMMAND")
            } catch let error as RedisError {
                guard case .server(let message) = error else { throw error }
                #expect(message.hasPrefix("ERR unknown command"))
                #expect(error.serverErrorCode == "ERR")
            }
            try await connection.set("text", to: "value")
            do {
                _ = try await connection.send("LPUSH", "text", "x")
                Issue.record("LPUSH on a string should fail")
            } catch let error as RedisError {
                #expect(error.serverErrorCode == "WRONGTYPE")
            }
            let replies = try await connection.pipeline([["PING"], ["BOGUS"], ["GET", "text"]])
            #expect(replies.count == 3)
            #expect(replies[0] == .simpleString("PONG"))
            #expect(replies[1].errorMessage?.hasPrefix("ERR unknown command") == true)
            #expect(replies[2] == "value")
            #expect(try await connection.ping() == "PONG")
            await connection.close()
        }
    }

    @Test("an overdue reply fails with .timeout and closes the connection")
    func commandTimeout() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            // The handshake is bounded by the same limit, so it must leave room for a busy
            // machine (with 300 ms the handshake timed out now and then on two loaded cores).
            configuration.commandTimeout = .seconds(2)
            let connection = try await RedisConnection.connect(configuration: configuration)
            let started = ContinuousClock.now
            await #expect(throws: RedisError.timeout) {
                try await connection.send(["BLPOP", "never-filled", "30"])
            }
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(try await eventually { !connection.isConnected })
            await #expect(throws: RedisError.connectionClosed) { try await connection.ping() }
        }
    }

    @Test("cancelling a waiting caller returns at once and leaves the connection usable")
    func cancellation() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: server.configuration)
            let waiter = Task { try await connection.send(["BLPOP", "list", "0"], timeout: .seconds(60)) }
            _ = try await eventually { try await clientsInfo("blocked_clients", server.configuration) == 1 }
            waiter.cancel()
            await #expect(throws: CancellationError.self) { try await waiter.value }
            // The BLPOP still holds the connection on the server; once it is answered, the dropped reply is skipped.
            let other = try await RedisConnection.connect(configuration: server.configuration)
            try await other.send("RPUSH", "list", "item")
            #expect(try await connection.get("missing") == nil)
            #expect(try await connection.ping() == "PONG")
            await connection.close()
            await other.close()
        }
    }

    @Test("RESP3 push messages (client-side caching invalidations) are skipped, replies stay matched")
    func pushMessagesAreSkipped() async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.protocolVersion = .resp3
            let tracked = try await RedisConnection.connect(configuration: configuration)
            let writer = try await RedisConnection.connect(configuration: configuration)
            try await tracked.send("CLIENT", "TRACKING", "ON")
            for round in 0..<20 {
                try await writer.set("watched", to: "v\(round)")
                #expect(try await tracked.get("watched") == "v\(round)")  // read: tracked, so the next SET pushes an invalidation
                try await writer.set("watched", to: "w\(round)")
                #expect(try await tracked.ping() == "PONG")
                #expect(try await tracked.incrby("rounds", 1) == round + 1)
            }
            await tracked.close()
            await writer.close()
        }
    }

    @Test("binary values round-trip unchanged")
    func binarySafe() async throws {
        try await withRedisServer { server in
            let connection = try await RedisConnection.connect(configuration: server.configuration)
            let bytes = ByteBuffer(bytes: (0...255).map { UInt8($0) } + [13, 10])
            _ = try await connection.send(["SET", .bytes(ByteBuffer(bytes: [0, 1, 13, 10])), .bytes(bytes)])
            let value = try await connection.send(["GET", .bytes(ByteBuffer(bytes: [0, 1, 13, 10]))])
            #expect(value == .bulkString(bytes))
            await connection.close()
        }
    }

    @Test("AUTH, HELLO with AUTH, SETNAME and SELECT in the handshake", arguments: [RedisConfiguration.ProtocolVersion.resp2, .resp3])
    func handshake(protocolVersion: RedisConfiguration.ProtocolVersion) async throws {
        try await withRedisServer(extraArguments: ["--requirepass", "s3cret"]) { server in
            var configuration = server.configuration
            configuration.protocolVersion = protocolVersion
            configuration.password = "wrong"
            await #expect {
                _ = try await RedisConnection.connect(configuration: configuration)
            } throws: { error in
                guard case .connectionFailed(let message) = error as? RedisError else { return false }
                return message.contains("WRONGPASS")
            }

            configuration.password = "s3cret"
            configuration.database = 3
            configuration.clientName = "chorus-test"
            let connection = try await RedisConnection.connect(configuration: configuration)
            #expect(connection.protocolVersion == protocolVersion)
            try await connection.set("in-db-3", to: "yes")
            #expect(try await connection.send("CLIENT", "GETNAME").string == "chorus-test")
            let hash = try await connection.send("HSET", "h", "a", "1", "b", "2")
            #expect(hash == 2)
            let all = try await connection.send("HGETALL", "h")
            if protocolVersion == .resp3 {
                guard case .map = all else { Issue.record("RESP3 HGETALL should be a map, got \(all)"); return }
            }
            #expect(all.dictionary?.mapValues(\.string) == ["a": "1", "b": "2"])

            configuration.database = 0
            let other = try await RedisConnection.connect(configuration: configuration)
            #expect(try await other.get("in-db-3") == nil)
            await connection.close()
            await other.close()
        }
    }

    @Test("connecting to a closed port fails with .connectionFailed")
    func connectFailure() async throws {
        let server = try await RedisServerProcess()
        let configuration = server.configuration
        await server.dispose()
        await #expect {
            _ = try await RedisConnection.connect(configuration: configuration)
        } throws: { error in
            if case .connectionFailed = error as? RedisError { return true }
            return false
        }
    }

}

/// A number from `INFO clients` (`connected_clients`, `blocked_clients`), read on a connection of its own.
func clientsInfo(_ field: String, _ configuration: RedisConfiguration) async throws -> Int {
    let connection = try await RedisConnection.connect(configuration: configuration)
    let info = try await connection.send("INFO", "clients").string ?? ""
    await connection.close()
    let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix(field + ":") }
    return line.flatMap { Int($0.dropFirst(field.count + 1)) } ?? -1
}
