import AsyncHTTPClient
import ChorusCore
import ChorusRuntime
import ChorusStore
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import ChorusHTTP

/// The drain that SIGTERM starts (docs/OPERATIONS.md), on the real server: readiness and new work
/// refused at once, reads still served, a stream in flight cut when the grace has passed.
@Suite struct DrainTests {
    @Test func aDrainRefusesNewWorkAndCutsTheStreamsLeftAfterTheGrace() async throws {
        try await Harness.run(configure: { $0.auth.enabled = false; $0.shutdown.graceSeconds = 0.5 }) { h in
            // A long stream on a connection of its own (the test client sends one request at a time).
            let port = try #require(h.client.port)
            let streaming = Task { () -> String in
                var request = HTTPClientRequest(url: "http://localhost:\(port)/v1/chat/completions")
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: #"{"model":"fake","stream":true,"messages":[{"role":"user","content":"long [[fake tokens=300 rate=20]]"}]}"#))
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
                var body = ""
                for try await chunk in response.body { body += String(buffer: chunk) }
                return body
            }
            // The body (counted as an open stream) begins with the first token.
            #expect(try await eventually {
                String(buffer: try await h.get("/metrics").body).contains(#"chorus_active_streams{kind="sse"} 1"#)
            })
            #expect(h.drain.inFlight == 1)

            let drain = h.drain
            let draining = Task { await drain.drain(logger: Logger(label: "test")) }
            #expect(try await eventually { drain.isDraining })
            let ready = try await h.get("/readyz")
            #expect(ready.status == .serviceUnavailable)
            #expect(try h.json(ready)["status"] == .string("draining"))
            let refused = try await h.chat("new work [[fake tokens=2]]")
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "5")
            #expect(try h.json(refused)["error"]?["code"] == .string("service_unavailable"))
            let batch = try await h.post("/v1/batches", json: #"{"prompt":"queued [[fake tokens=2]]","models":["fake"]}"#)
            #expect(batch.status == .serviceUnavailable)
            #expect(try await h.get("/v1/models").status == .ok)  // reads go on

            await draining.value
            #expect(drain.inFlight == 0)
            let body = try await streaming.value
            #expect(body.contains(#""code":"service_unavailable""#))
            #expect(!body.contains("[DONE]"))
            // The part streamed so far is saved, marked as cut by the shutdown.
            let conversations = try await h.store.conversations(ownerID: localOwnerID, limit: 10, updatedBefore: nil)
            let conversation = try #require(conversations.first)
            let answer = try #require(try await h.store.messages(conversationID: conversation.id, ownerID: localOwnerID).first { $0.role == "assistant" })
            #expect(answer.status == .partial)
            #expect(answer.metadata["reason"] == .string("shutdown"))
            #expect(!answer.content.isEmpty)
        }
    }

    @Test func onlyTheRoutesThatStartWorkAreRefused() {
        for path in ["/v1/chat/completions", "/api/chat/completions", "/v1/tasks", "/v1/batches/", "/api/ai/qwen/", "/api/ai/qwen-async/", "/api/tasks/submit/"] {
            #expect(DrainMiddleware.isWork(path), "\(path)")
        }
        for path in ["/v1/tasks/task_1/cancel", "/v1/conversations", "/v1/files", "/readyz", "/"] {
            #expect(!DrainMiddleware.isWork(path), "\(path)")
        }
    }
}
