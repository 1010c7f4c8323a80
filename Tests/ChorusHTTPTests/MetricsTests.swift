import AsyncHTTPClient
import ChorusCore
import ChorusRuntime
import ChorusStore
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import ChorusHTTP

/// `GET /metrics` after some traffic: the series Prometheus scrapes, with the values it caused.
@Suite struct MetricsTests {
    @Test func aScrapeShowsTheTrafficBefore() async throws {
        try await Harness.run { h in
            _ = try await h.chat("one [[fake tokens=4 reasoning=2]]", stream: true)
            _ = try await h.chat("two [[fake tokens=3]]")
            _ = try await h.chat("bad [[fake status=500]]")
            let body = try await h.post("/v1/batches", json: #"{"prompt":"queued [[fake tokens=2]]","models":["fake"]}"#)
            _ = try await h.waitForTask(try #require(try h.json(body)["task_ids"]?.arrayValue?.first?.stringValue))

            let scrape = try await h.get("/metrics")
            #expect(scrape.status == .ok)
            #expect(scrape.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            let text = String(buffer: scrape.body)
            func value(_ series: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
            }
            #expect(value(#"chorus_http_requests_total{route="/v1/chat/completions",method="POST",status="200"}"#) == 2)
            #expect(value(#"chorus_http_requests_total{route="/v1/chat/completions",method="POST",status="502"}"#) == 1)
            #expect(value(#"chorus_upstream_requests_total{model="fake",deployment="fake/0"}"#) == 4)
            #expect(value(#"chorus_upstream_errors_total{model="fake",deployment="fake/0",kind="5xx"}"#) == 1)
            // Two chats and the task: 6 + 3 + 2 completion tokens, 2 of them reasoning.
            #expect(value(#"chorus_tokens_total{model="fake",kind="completion"}"#) == 11)
            #expect(value(#"chorus_tokens_total{model="fake",kind="reasoning"}"#) == 2)
            #expect(value(#"chorus_time_to_first_token_seconds_count{model="fake"}"#) == 3)
            #expect((value(#"chorus_inter_token_seconds_count{model="fake"}"#) ?? 0) >= 8)
            #expect(value(#"chorus_active_streams{kind="sse"}"#) == 0)
            #expect(value(#"chorus_tasks{state="SUCCESS"}"#) == 1)
            #expect(value(#"chorus_queue_depth{model="fake"}"#) != nil)
            #expect(value("chorus_dead_letters") == 0)
            // Connections in use, sampled at the scrape: SQLite's writer and its two readers.
            #expect(value(#"chorus_db_connections_max{pool="sqlite_writer"}"#) == 1)
            #expect(value(#"chorus_db_connections_max{pool="sqlite_readers"}"#) == 2)
            #expect(value(#"chorus_db_connections_in_use{pool="sqlite_readers"}"#) != nil)
            #expect(value(#"chorus_db_connections_waiting{pool="sqlite_writer"}"#) != nil)
        }
    }

    /// The pool figures follow the connections: the writer is in use while a transaction runs.
    @Test func poolUsageFollowsTheWriter() async throws {
        try await Harness.run(worker: false) { h in
            let backend = h.backend
            @Sendable func writer() -> PoolUsage? { backend.pools.first { $0.pool == "sqlite_writer" } }
            let inside = try await backend.transaction { _ in writer() }
            #expect(inside?.inUse == 1)
            #expect(writer()?.inUse == 0)
            _ = try await h.get("/v1/conversations")
            let readers = try #require(backend.pools.first { $0.pool == "sqlite_readers" })
            #expect(readers.inUse == 0 && readers.waiting == 0 && readers.maximum == 2)
        }
    }

    @Test func theMetricsNeedTheirPermission() async throws {
        #expect(AccessPolicy.requirement(method: .get, path: "/metrics") == .permission(.adminMetrics))
        #expect(BuiltinRole.permissions["admin"]?.contains(.adminMetrics) == true)
        #expect(BuiltinRole.permissions["user"]?.contains(.adminMetrics) == false)
    }

    /// A scraper's token reads `/metrics` and nothing else; without it, an account is needed.
    @Test func aScrapeTokenReadsTheMetricsOnly() async throws {
        let token = "scrape-token-0123456789"
        try await Harness.run(configure: { $0.auth.enabled = true; $0.auth.bcryptCost = 4; $0.metrics.scrapeToken = token }) { h in
            let scraper: HTTPFields = [.authorization: "Bearer " + token]
            let stranger: HTTPFields = [.authorization: "Bearer wrong-token-0123456789"]
            let scraped = try await h.get("/metrics", headers: scraper)
            let refused = try await h.get("/metrics", headers: stranger)
            let anonymous = try await h.get("/metrics")
            let elsewhere = try await h.get("/v1/models", headers: scraper)
            #expect(scraped.status == .ok)
            #expect(refused.status == .unauthorized && anonymous.status == .unauthorized)
            #expect(elsewhere.status == .unauthorized)
        }
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(yaml: "metrics:\n  scrape_token_env: SCRAPE\n", environment: ["SCRAPE": "short"])
        }
        let loaded = try ConfigurationLoader.parse(yaml: "metrics:\n  scrape_token_env: SCRAPE\n", environment: ["SCRAPE": token])
        #expect(loaded.metrics.scrapeToken == token)
    }

    /// A client following a task's events is an open stream until the task ends.
    @Test func anOpenEventStreamIsCounted() async throws {
        try await Harness.run { h in
            let body = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"slow [[fake tokens=200 rate=20]]","models":["fake"]}"#))
            let taskID = try #require(body["task_ids"]?.arrayValue?.first?.stringValue)
            // Its own connection: the test client sends one request at a time.
            let port = try #require(h.client.port)
            let following = Task {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://localhost:\(port)/v1/tasks/\(taskID)/events"), timeout: .seconds(30))
                for try await _ in response.body {}
            }
            func open() async throws -> Double? {
                let text = String(buffer: try await h.get("/metrics").body)
                return text.split(separator: "\n").first { $0.hasPrefix(#"chorus_active_streams{kind="sse"} "#) }
                    .flatMap { Double($0.split(separator: " ").last!) }
            }
            #expect(try await eventually { try await open() == 1 })
            _ = try await h.post("/v1/tasks/\(taskID)/cancel", json: "{}")
            _ = try await following.value
            #expect(try await eventually { try await open() == 0 })
        }
    }
}
