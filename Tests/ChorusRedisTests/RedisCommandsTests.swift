import ChorusRedis
import Testing

@Suite("Typed command helpers against redis-server")
struct RedisCommandsTests {
    @Test("stream helpers end to end", arguments: [RedisConfiguration.ProtocolVersion.resp2, .resp3])
    func streams(protocolVersion: RedisConfiguration.ProtocolVersion) async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.protocolVersion = protocolVersion
            try await withRunningClient(configuration) { client in
                let key = "chorus:queue:model-a"
                #expect(try await client.xgroupCreate(key, group: "workers", startID: "0"))
                #expect(try await client.xgroupCreate(key, group: "workers", startID: "0") == false)  // BUSYGROUP ignored

                var ids: [String] = []
                for index in 1...3 {
                    ids.append(try await client.xadd(key, fields: [("task", "t-\(index)"), ("attempt", "1")]))
                }
                #expect(try await client.xlen(key) == 3)
                var groups = try await client.xinfoGroups(key)
                #expect(groups.count == 1)
                #expect(groups.first?.name == "workers")
                #expect(groups.first?.lag == 3)
                #expect(groups.first?.pending == 0)

                // Consumer c1 reads two, acknowledges one, then reads the last.
                let firstRead = try await client.xreadgroup(group: "workers", consumer: "c1", key: key, count: 2)
                #expect(firstRead.map(\.id) == Array(ids[0..<2]))
                #expect(firstRead[0].fields.map(\.name) == ["task", "attempt"])
                #expect(firstRead[1]["task"] == "t-2")
                #expect(firstRead[1].fieldDictionary == ["task": "t-2", "attempt": "1"])

                var summary = try await client.xpending(key, group: "workers")
                #expect(summary.count == 2)
                #expect(summary.smallestID == ids[0])
                #expect(summary.greatestID == ids[1])
                #expect(summary.consumers == ["c1": 2])

                #expect(try await client.xack(key, group: "workers", ids: [ids[0]]) == 1)
                #expect(try await client.xack(key, group: "workers", ids: [ids[0]]) == 0)
                let secondRead = try await client.xreadgroup(group: "workers", consumer: "c1", key: key, count: 10)
                #expect(secondRead.map(\.id) == [ids[2]])

                groups = try await client.xinfoGroups(key)
                #expect(groups.first?.lag == 0)
                #expect(groups.first?.entriesRead == 3)
                #expect(groups.first?.pending == 2)
                #expect(groups.first?.lastDeliveredID == ids[2])
                #expect(groups.first?.consumers == 1)

                var pending = try await client.xpending(key, group: "workers", count: 10)
                #expect(pending.map(\.id) == [ids[1], ids[2]])
                #expect(pending.allSatisfy { $0.consumer == "c1" && $0.deliveryCount == 1 })

                // Rereading own pending entries with id 0.
                let own = try await client.xreadgroup(group: "workers", consumer: "c1", key: key, id: "0")
                #expect(own.map(\.id) == [ids[1], ids[2]])

                // c1 goes quiet; c2 reclaims what idled past the lease.
                try await Task.sleep(for: .milliseconds(150))
                let claimed = try await client.xautoclaim(key, group: "workers", consumer: "c2", minIdle: .milliseconds(100), count: 10)
                #expect(claimed.entries.map(\.id) == [ids[1], ids[2]])
                #expect(claimed.entries.first?["task"] == "t-2")
                #expect(claimed.nextStart == "0-0")
                #expect(claimed.deletedIDs.isEmpty)
                pending = try await client.xpending(key, group: "workers", count: 10, consumer: "c2")
                #expect(pending.map(\.deliveryCount) == [3, 3])  // read with >, reread with 0, claimed
                summary = try await client.xpending(key, group: "workers")
                #expect(summary.consumers == ["c2": 2])
                let idle = try await client.xpending(key, group: "workers", count: 10, minIdle: .seconds(60))
                #expect(idle.isEmpty)

                // A pending entry deleted from the stream is reported as deleted by the next claim.
                #expect(try await client.xdel(key, ids: [ids[1]]) == 1)
                let afterDelete = try await client.xautoclaim(key, group: "workers", consumer: "c3", minIdle: .zero)
                #expect(afterDelete.entries.map(\.id) == [ids[2]])
                #expect(afterDelete.deletedIDs == [ids[1]])

                // Ranges and plain reads (following a task's event stream).
                #expect(try await client.xrange(key).map(\.id) == [ids[0], ids[2]])
                #expect(try await client.xrange(key, count: 1).map(\.id) == [ids[0]])
                #expect(try await client.xrange(key, start: "(" + ids[0]).map(\.id) == [ids[2]])
                #expect(try await client.xread(key: key, after: "0").map(\.id) == [ids[0], ids[2]])
                #expect(try await client.xread(key: key, after: ids[2]).isEmpty)
                #expect(try await client.xread(key: key, after: "$", block: .milliseconds(50)).isEmpty)
                let multi = try await client.xread(streams: [(key, "0"), ("missing-stream", "0")], count: 1)
                #expect(multi.map(\.key) == [key])
                #expect(multi.first?.entries.count == 1)

                // Trimming.
                for index in 0..<5 {
                    try await client.xadd("trimmed", fields: [("n", "\(index)")], maxLength: 2, approximateTrim: false)
                }
                #expect(try await client.xlen("trimmed") == 2)
                try await client.xadd("trimmed", fields: [("n", "5")], maxLength: 1000)
                #expect(try await client.xlen("trimmed") == 3)
            }
        }
    }

    @Test("key, counter and script helpers", arguments: [RedisConfiguration.ProtocolVersion.resp2, .resp3])
    func keysAndScripts(protocolVersion: RedisConfiguration.ProtocolVersion) async throws {
        try await withRedisServer { server in
            var configuration = server.configuration
            configuration.protocolVersion = protocolVersion
            try await withRunningClient(configuration) { client in
                #expect(try await client.ping() == "PONG")
                #expect(try await client.get("absent") == nil)
                #expect(try await client.set("k", to: "v1"))
                #expect(try await client.set("k", to: "v2", onlyIfAbsent: true) == false)
                #expect(try await client.get("k") == "v1")
                #expect(try await client.set("lock", to: "me", onlyIfAbsent: true, expiresIn: .seconds(30)))
                let ttl = try await client.send("PTTL", "lock").int ?? 0
                #expect((1...30_000).contains(ttl))
                #expect(try await client.expire("k", seconds: 100))
                #expect(try await client.expire("absent", seconds: 100) == false)
                #expect(try await client.incrby("n", 5) == 5)
                #expect(try await client.incrby("n", -7) == -2)
                #expect(try await client.del("k", "lock", "absent") == 2)
                #expect(try await client.del([]) == 0)

                let source = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
                #expect(try await client.eval(source, keys: ["scripted"], arguments: ["3"]) == 3)
                let script = RedisScript(source)
                #expect(try await client.scriptLoad(source) == script.sha1)
                #expect(try await client.evalsha(script.sha1, keys: ["scripted"], arguments: ["4"]) == 7)
                _ = try await client.send("SCRIPT", "FLUSH")
                await #expect {
                    _ = try await client.evalsha(script.sha1, keys: ["scripted"], arguments: ["1"])
                } throws: { error in
                    (error as? RedisError)?.serverErrorCode == "NOSCRIPT"
                }
                #expect(try await client.evaluate(script, keys: ["scripted"], arguments: ["1"]) == 8)  // falls back to EVAL
                #expect(try await client.evaluate(script, keys: ["scripted"], arguments: ["1"]) == 9)  // cached again
                let table = try await client.eval("return {1, 'two', {3}}")
                #expect(table == [1, "two", [3]])
            }
        }
    }
}

@Suite("Configuration and small pieces")
struct RedisConfigurationTests {
    @Test("redis:// URLs")
    func urls() throws {
        let plain = try #require(RedisConfiguration(url: "redis://cache.internal:6380/2"))
        #expect(plain.host == "cache.internal")
        #expect(plain.port == 6380)
        #expect(plain.database == 2)
        #expect(plain.password == nil)

        let withUser = try #require(RedisConfiguration(url: "redis://chorus:p%40ss%3Aword@10.0.0.5"))
        #expect(withUser.username == "chorus")
        #expect(withUser.password == "p@ss:word")
        #expect(withUser.port == 6379)

        let passwordOnly = try #require(RedisConfiguration(url: "redis://:secret@localhost/"))
        #expect(passwordOnly.username == nil)
        #expect(passwordOnly.password == "secret")
        #expect(passwordOnly.database == 0)

        let ipv6 = try #require(RedisConfiguration(url: "redis://[::1]:7000"))
        #expect(ipv6.host == "::1")
        #expect(ipv6.port == 7000)

        #expect(RedisConfiguration(url: "rediss://host") == nil)
        #expect(RedisConfiguration(url: "redis://host:notaport") == nil)
        #expect(RedisConfiguration(url: "redis://host/db") == nil)
    }

    @Test("backoff grows, is capped and jittered")
    func backoff() {
        let backoff = RedisConfiguration.Backoff(initial: .milliseconds(100), maximum: .seconds(2))
        for attempt in 1...40 {
            let step = min(Duration.milliseconds(100) * (1 << min(attempt - 1, 20)), .seconds(2))
            let delay = backoff.delay(afterFailure: attempt)
            #expect(delay >= step / 2 && delay <= step, "attempt \(attempt): \(delay)")
        }
    }

    @Test("script SHA-1 matches known digests")
    func sha1() {
        #expect(RedisScript("").sha1 == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(RedisScript("abc").sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(
            RedisScript("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq").sha1
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        )
    }
}
