import ChorusCore
import ChorusStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing
import ChorusRuntime
import ChorusHTTP

@Suite struct ChatCompletionsTests {
    /// Found by fuzzing the OpenAPI document: `"cache": {"ttl_seconds": 1e300}` overflowed the
    /// cache entry's expiry time and crashed the whole process after the answer. It is a 400 now,
    /// for a chat and for a batch (whose tasks would have crashed the worker), with nothing stored.
    @Test func anOutOfRangeCacheTTLIsABadRequestAndTheServerLives() async throws {
        try await Harness.run { h in
            let messages = #""messages":[{"role":"user","content":"hi [[fake tokens=2]]"}]"#
            let chat = try await h.post("/v1/chat/completions", json: #"{"model":"fake","# + messages + #","cache":{"ttl_seconds":1e300}}"#)
            #expect(chat.status == .badRequest)
            #expect(try h.json(chat)["error"]?["param"] == .string("cache.ttl_seconds"))
            let batch = try await h.post("/v1/batches", json: #"{"models":["fake"],"prompt":"hi","cache":{"ttl_seconds":1e300}}"#)
            #expect(batch.status == .badRequest)
            #expect(try h.json(batch)["error"]?["param"] == .string("cache.ttl_seconds"))
            #expect(try await h.messageCount() == 0, "nothing half-written")
            // A cached answer with the longest allowed lifetime works, and so does the server.
            let cached = try await h.post("/v1/chat/completions", json: #"{"model":"fake","# + messages + #","cache":{"ttl_seconds":31536000}}"#)
            #expect(cached.status == .ok)
            #expect(cached.headers[HTTPField.Name("X-Chorus-Cache")!] == "miss")
            let again = try await h.post("/v1/chat/completions", json: #"{"model":"fake","# + messages + #","cache":{"ttl_seconds":31536000}}"#)
            #expect(again.headers[HTTPField.Name("X-Chorus-Cache")!] == "hit")
        }
    }

    @Test func aNormalTurnIsTwoWritesAndStoresBothMessages() async throws {
        // No task worker: its heartbeats would be counted too; the audit log's batches (one a
        // second at most, whatever the load) are counted apart.
        try await Harness.run(worker: false) { h in
            let writes = h.turnWrites
            let response = try await h.chat("hello [[fake tokens=4 reasoning=2]]")
            #expect(response.status == .ok)
            #expect(h.turnWrites - writes == 2)
            let conversationID = try #require(response.headers[HTTPField.Name("X-Conversation-Id")!])
            #expect(response.headers[HTTPField.Name("X-Request-Id")!]?.hasPrefix("req_") == true)
            let body = try h.json(response)
            #expect(body["choices"]?.arrayValue?.first?["message"]?["content"] == .string("t0 t1 t2 t3 "))
            #expect(body["choices"]?.arrayValue?.first?["message"]?["reasoning_content"] == .string("r0 r1 "))
            let stored = try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID)
            #expect(stored.map(\.role) == ["user", "assistant"])
            #expect(stored[1].content == "t0 t1 t2 t3 ")
            #expect(stored[1].reasoning == "r0 r1 ")
            #expect(stored[1].status == .complete)
        }
    }

    @Test func aSilentUpstreamGetsKeepAliveCommentsAndTheAnswerStillArrives() async throws {
        try await Harness.run(betweenTokens: 10) { h in
            // One token, then 6 s of silence (the keep-alive comes every 5 s), then the rest.
            let response = try await h.chat("quiet [[fake tokens=3 stall_after=1 stall=6]]", stream: true)
            #expect(response.status == .ok)
            let body = String(buffer: response.body)
            #expect(body.contains("\n: keep-alive\n\n"))
            let events = try h.events(response)
            #expect(events.last == "[DONE]")
            let content = try events.dropLast().compactMap { try JSONValue.parse(Array($0.utf8))["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue }
            #expect(content.joined() == "t0 t1 t2 ")
        }
    }

    @Test func aStreamedTurnSeparatesThinkingFromAnswer() async throws {
        try await Harness.run { h in
            let response = try await h.chat("hi [[fake tokens=3 reasoning=2 think_tags=1 comments=1]]", stream: true)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/event-stream")
            let events = try h.events(response)
            #expect(events.last == "[DONE]")
            var content = "", reasoning = ""
            var sawUsage = false
            for event in events.dropLast() {
                let chunk = try JSONValue.parse(Array(event.utf8))
                if let delta = chunk["choices"]?.arrayValue?.first?["delta"] {
                    content += delta["content"]?.stringValue ?? ""
                    reasoning += delta["reasoning_content"]?.stringValue ?? ""
                }
                if chunk["usage"]?.objectValue != nil { sawUsage = true }
            }
            #expect(content == "t0 t1 t2 ")
            #expect(reasoning == "r0 r1 ")
            #expect(sawUsage)
            let conversationID = try #require(response.headers[HTTPField.Name("X-Conversation-Id")!])
            let assistant = try await h.assistantMessages(conversationID)
            #expect(assistant.count == 1)
            #expect(assistant.first?.content == "t0 t1 t2 ")
            #expect(assistant.first?.reasoning == "r0 r1 ")
        }
    }

    @Test func theSecondTurnCarriesTheFirstAsHistory() async throws {
        try await Harness.run { h in
            let first = try await h.chat("first question [[fake tokens=2]]")
            let conversationID = try #require(first.headers[HTTPField.Name("X-Conversation-Id")!])
            let second = try await h.chat("second [[fake echo=1]]", conversationID: conversationID)
            #expect(second.headers[HTTPField.Name("X-Conversation-Id")!] == conversationID)
            let answer = try h.json(second)["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue
            // user, assistant, user: the first turn came back from the database.
            #expect(answer?.hasPrefix("echo: 3 |") == true)
            let stored = try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID)
            #expect(stored.map(\.role) == ["user", "assistant", "user", "assistant"])
        }
    }

    @Test(arguments: [
        ("{not json", 400, "invalid_json"),
        (#"{"messages":[{"role":"user","content":"x"}]}"#, 400, "missing_required_parameter"),
        (#"{"model":"fake","messages":"x"}"#, 400, "invalid_type"),
        (#"{"model":"nope","messages":[{"role":"user","content":"x"}]}"#, 404, "model_not_found"),
        (#"{"model":"fake","conversation_id":"conv_missing","messages":[{"role":"user","content":"x"}]}"#, 404, "not_found"),
    ])
    func rejectedRequestsStoreNothing(body: String, status: Int, code: String) async throws {
        try await Harness.run(worker: false) { h in
            // The audit log's once-a-second batch may land meanwhile; it is not the request's write.
            let writes = h.turnWrites
            let response = try await h.post("/v1/chat/completions", body: Array(body.utf8))
            #expect(response.status.code == status)
            let error = try h.json(response)["error"]
            #expect(error?["code"] == .string(code))
            #expect(error?["message"]?.stringValue?.isEmpty == false)
            #expect(error?.objectValue?.keys.sorted() == ["code", "message", "param", "type"])
            #expect(response.headers[HTTPField.Name("X-Request-Id")!] != nil)
            #expect(h.turnWrites == writes)
            #expect(try await h.messageCount() == 0)
        }
    }

    @Test(arguments: [false, true])
    func upstreamErrorsAre502And504BeforeTheFirstToken(stream: Bool) async throws {
        // A first-token deadline of 2 s: at 1 s a loaded machine's connect alone could miss it.
        try await Harness.run(firstToken: 2) { h in
            let failed = try await h.chat("x [[fake status=500]]", stream: stream)
            #expect(failed.status == .badGateway)
            #expect(try h.json(failed)["error"]?["type"] == .string("upstream_error"))
            let slow = try await h.chat("x [[fake stall_first=5]]", stream: stream)
            #expect(slow.status == .gatewayTimeout)
            if stream {
                #expect(try h.json(slow)["error"]?["code"] == .string("upstream_timeout_first_token"))
            }
            // The user message was committed before the call, and the failure is recorded once.
            let conversationID = try #require(failed.headers[HTTPField.Name("X-Conversation-Id")!])
            let assistant = try await h.assistantMessages(conversationID)
            #expect(assistant.count == 1)
            #expect(assistant.first?.status == .partial)
            #expect(assistant.first?.metadata["partial"] == .bool(true))
        }
    }

    @Test func anUpstreamFailingMidStreamLeavesThePartialWithTheError() async throws {
        try await Harness.run { h in
            let response = try await h.chat("x [[fake tokens=10 disconnect_after=3]]", stream: true)
            #expect(response.status == .ok)
            let events = try h.events(response)
            #expect(events.last != "[DONE]")
            #expect(try JSONValue.parse(Array(events.last!.utf8))["error"]?["type"] == .string("upstream_error"))
            let conversationID = try #require(response.headers[HTTPField.Name("X-Conversation-Id")!])
            let assistant = try await h.assistantMessages(conversationID)
            #expect(assistant.count == 1)
            #expect(assistant.first?.content == "t0 t1 t2 ")
            #expect(assistant.first?.status == .partial)
            #expect(assistant.first?.metadata["error"]?["message"]?.stringValue?.isEmpty == false)
        }
    }

    @Test func aStallBetweenTokensTimesOutAndKeepsThePartial() async throws {
        // The first-token limit outlasts the whole stall, so only the gap limit can end it: a gap
        // limit shorter than the first-token limit holds from the first token on.
        try await Harness.run(firstToken: 10, betweenTokens: 0.5) { h in
            let response = try await h.chat("x [[fake tokens=6 stall_after=2 stall=3]]", stream: true)
            let events = try h.events(response)
            #expect(try JSONValue.parse(Array(events.last!.utf8))["error"]?["code"] == .string("upstream_timeout_between_tokens"))
            let conversationID = try #require(response.headers[HTTPField.Name("X-Conversation-Id")!])
            let assistant = try await h.assistantMessages(conversationID)
            #expect(assistant.first?.content == "t0 t1 ")
            #expect(assistant.first?.metadata["reason"] == .string("upstream_timeout_between_tokens"))
        }
    }

    @Test func modelsAndHealth() async throws {
        try await Harness.run { h in
            let models = try h.json(try await h.get("/v1/models"))
            #expect(models["object"] == .string("list"))
            #expect(models["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["fake", "fake2"])
            #expect(try await h.get("/v1/models/nope").status == .notFound)
            #expect(try await h.get("/healthz").status == .ok)
            let unknown = try await h.get("/v1/nothing-here")
            #expect(unknown.status == .notFound)
            #expect(try h.json(unknown)["error"]?["code"] == .string("unknown_url"))
        }
    }
}
