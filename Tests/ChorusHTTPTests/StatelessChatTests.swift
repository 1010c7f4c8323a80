import ChorusCore
import ChorusRuntime
import ChorusStore
import FakeUpstreamKit
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

@testable import ChorusHTTP

/// Requests as stateless clients send them: the whole history on every call, no `conversation_id`.
@Suite struct StatelessChatTests {
    static let history = #"""
        [{"role":"system","content":"Be brief."},{"role":"user","content":"Hi","name":"ann"},
         {"role":"assistant","content":"Hello!"},{"role":"user","content":"Tell me a joke [[fake echo=1]]"}]
        """#

    /// The answer's text, whole or from the stream's deltas (which must end with `[DONE]`).
    static func answer(_ response: TestResponse, stream: Bool, _ h: Harness) throws -> String {
        guard stream else {
            return try h.json(response)["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue ?? ""
        }
        let events = try h.events(response)
        #expect(events.last == "[DONE]")
        return try events.dropLast().map {
            try JSONValue.parse(Array($0.utf8))["choices"]?.arrayValue?.first?["delta"]?["content"]?.stringValue ?? ""
        }.joined()
    }

    @Test(arguments: [false, true])
    func aResentHistoryIsAnsweredAndStoredOnce(stream: Bool) async throws {
        try await Harness.run { h in
            let body = #"{"model":"fake","stream":\#(stream),"messages":\#(Self.history)}"#
            let response = try await h.post("/v1/chat/completions", json: body)
            #expect(response.status == .ok)
            let answer = try Self.answer(response, stream: stream, h)
            // The upstream got the four messages exactly as sent (the name too).
            #expect(answer == "echo: 4 | Tell me a joke")
            let sent = try JSONValue.parse(Array(try #require(await h.stats.lastRequestBodies(1).first).utf8))
            #expect(sent["messages"]?.arrayValue?[1] == .object(["role": .string("user"), "content": .string("Hi"), "name": .string("ann")]))
            // One conversation: the client's three messages and the answer, each once.
            let conversationID = try #require(response.headers[HTTPField.Name("X-Conversation-Id")!])
            let stored = try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID)
            #expect(stored.map(\.role) == ["user", "assistant", "user", "assistant"])
            #expect(stored.map(\.content) == ["Hi", "Hello!", "Tell me a joke [[fake echo=1]]", "echo: 4 | Tell me a joke"])
            #expect(stored[3].status == .complete)
            #expect(try await h.store.conversations(ownerID: localOwnerID, limit: 10, updatedBefore: nil).count == 1)
        }
    }

    @Test(arguments: [false, true])
    func storeFalseWritesNothing(stream: Bool) async throws {
        try await Harness.run(worker: false) { h in
            let writes = h.turnWrites
            let body = #"{"model":"fake","store":false,"stream":\#(stream),"messages":\#(Self.history)}"#
            let response = try await h.post("/v1/chat/completions", json: body)
            #expect(response.status == .ok)
            #expect(response.headers[HTTPField.Name("X-Conversation-Id")!] == nil)
            #expect(!String(buffer: response.body).contains("conversation_id"))
            #expect(try Self.answer(response, stream: stream, h) == "echo: 4 | Tell me a joke")
            #expect(h.turnWrites == writes)
            #expect(try await h.messageCount() == 0)
            // `store` is Chorus's own: the upstream never sees it.
            let sent = try JSONValue.parse(Array(try #require(await h.stats.lastRequestBodies(1).first).utf8))
            #expect(sent["store"] == nil)
        }
    }

    /// `store: false` with a conversation reads its history and changes nothing.
    @Test func storeFalseReadsAConversationWithoutChangingIt() async throws {
        try await Harness.run { h in
            let first = try await h.chat("first [[fake tokens=2]]")
            let conversationID = try #require(first.headers[HTTPField.Name("X-Conversation-Id")!])
            let body = #"{"model":"fake","store":false,"conversation_id":"\#(conversationID)","messages":[{"role":"user","content":"again [[fake echo=1]]"}]}"#
            let response = try await h.post("/v1/chat/completions", json: body)
            #expect(response.status == .ok)
            #expect(try h.json(response)["choices"]?.arrayValue?.first?["message"]?["content"] == .string("echo: 3 | again"))
            #expect(try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID).count == 2)
            let missing = #"{"model":"fake","store":false,"conversation_id":"conv_nope","messages":[{"role":"user","content":"x"}]}"#
            #expect(try await h.post("/v1/chat/completions", json: missing).status == .notFound)
        }
    }

    /// `conversations.store: false` makes OpenAI's default Chorus's; `store: true` still keeps a turn.
    @Test func theDefaultIsConfigurable() async throws {
        try await Harness.run(configure: { $0.auth.enabled = false; $0.conversations.store = false }) { h in
            let plain = try await h.chat("hello [[fake tokens=2]]")
            #expect(plain.status == .ok)
            #expect(plain.headers[HTTPField.Name("X-Conversation-Id")!] == nil)
            #expect(try await h.messageCount() == 0)
            let kept = try await h.post("/v1/chat/completions", json: #"{"model":"fake","store":true,"messages":[{"role":"user","content":"keep [[fake tokens=2]]"}]}"#)
            #expect(kept.headers[HTTPField.Name("X-Conversation-Id")!] != nil)
            #expect(try await h.messageCount() == 2)
        }
    }

    /// An answer that cannot be stored (its conversation was deleted while it streamed) still
    /// reaches the client whole, streamed or not.
    @Test(arguments: [false, true])
    func anAnswerThatCannotBeStoredStillArrives(stream: Bool) async throws {
        try await Harness.run { h in
            let response = Task { try await h.chat("slow [[fake tokens=10 rate=20]]", stream: stream) }
            #expect(try await eventually {
                guard let conversation = try await h.store.conversations(ownerID: localOwnerID, limit: 1, updatedBefore: nil).first else { return false }
                return try await h.store.deleteConversation(id: conversation.id, ownerID: nil)
            })
            let answered = try await response.value
            #expect(answered.status == .ok)
            #expect(try Self.answer(answered, stream: stream, h) == "t0 t1 t2 t3 t4 t5 t6 t7 t8 t9 ")
            #expect(try await h.messageCount() == 0)
        }
    }

    /// Seed 002's clients post to `/api/chat/completions`: the same endpoint.
    @Test func theSeedPathIsTheSameEndpoint() async throws {
        try await Harness.run { h in
            let response = try await h.post("/api/chat/completions", json: #"{"model":"fake","messages":\#(Self.history)}"#)
            #expect(response.status == .ok)
            #expect(try Self.answer(response, stream: false, h) == "echo: 4 | Tell me a joke")
        }
        #expect(AccessPolicy.requirement(method: .post, path: "/api/chat/completions") == .permission(.chat))
    }
}
