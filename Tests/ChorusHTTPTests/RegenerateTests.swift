import ChorusCore
import ChorusRuntime
import ChorusStore
import FakeUpstreamKit
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@testable import ChorusHTTP

/// `POST /v1/batches` with `regenerate: true`: new answers to the last user message, which replace
/// the earlier ones in the history the models see next.
@Suite struct RegenerateTests {
    @Test func aRegeneratedAnswerReplacesTheOldOneInHistory() async throws {
        try await Harness.run { h in
            let first = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"hello [[fake echo=1]]","models":["fake"]}"#))
            let conversationID = try #require(first["conversation_id"]?.stringValue)
            _ = try await h.waitForTask(try #require(first["task_ids"]?.arrayValue?.first?.stringValue))

            let again = try h.json(try await h.post("/v1/batches", json: #"{"regenerate":true,"models":["fake"],"conversation_id":"\#(conversationID)"}"#))
            let task = try await h.waitForTask(try #require(again["task_ids"]?.arrayValue?.first?.stringValue))
            // The model saw the user message alone, not its earlier answer.
            #expect(task["result"]?["content"] == .string("echo: 1 | hello"))
            let stored = try await h.store.messages(conversationID: conversationID, ownerID: localOwnerID)
            #expect(stored.map(\.role) == ["user", "assistant", "assistant"])

            // The next turn's history has the latest answer only.
            let next = try h.json(try await h.post("/v1/batches", json: #"{"prompt":"more [[fake echo=1]]","models":["fake"],"conversation_id":"\#(conversationID)"}"#))
            let answer = try await h.waitForTask(try #require(next["task_ids"]?.arrayValue?.first?.stringValue))
            #expect(answer["result"]?["content"] == .string("echo: 3 | more"))
        }
    }

    @Test(arguments: [
        #"{"regenerate":true,"models":["fake"]}"#,
        #"{"regenerate":true,"prompt":"x","models":["fake"],"conversation_id":"conv_x"}"#,
        #"{"regenerate":"yes","prompt":"x","models":["fake"]}"#,
    ])
    func aRegenerateNeedsAConversationAndNothingElse(body: String) async throws {
        try await Harness.run { h in
            let response = try await h.post("/v1/batches", json: body)
            #expect(response.status == .badRequest)
            #expect(try await h.messageCount() == 0)
        }
    }
}

@Suite struct ConversationSearchTests {
    @Test func theListFiltersByTitle() async throws {
        try await Harness.run { h in
            _ = try await h.chat("Trip to Paris [[fake tokens=1]]")
            _ = try await h.chat("Groceries [[fake tokens=1]]")
            let found = try h.json(try await h.get("/v1/conversations?q=PARIS"))["data"]?.arrayValue ?? []
            #expect(found.compactMap { $0["title"]?.stringValue } == ["Trip to Paris [[fake tokens=1]]"])
            #expect(try h.json(try await h.get("/v1/conversations"))["data"]?.arrayValue?.count == 2)
        }
    }
}
