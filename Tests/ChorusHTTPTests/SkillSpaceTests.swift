import ChorusCore
@testable import ChorusHTTP
import ChorusRuntime
import ChorusStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// SkillSpace's routes in embedded mode; tests/e2e/test_skillspace.py drives them as its front end does.
@Suite struct SkillSpaceTests {
    private static let configure: @Sendable (inout ChorusConfiguration) -> Void = {
        $0.auth.enabled = false
        $0.skillSpace.model = "fake"
    }

    @Test func concurrentFirstUsesOfASessionShareOneConversation() async throws {
        try await Harness.run(configure: Self.configure) { h in
            let session = "race-\(UUID().uuidString)"
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<5 {
                    group.addTask {
                        let response = try await h.post("/api/ai/qwen/", json: #"{"prompt":"turn \#(index) [[fake tokens=2]]","session_id":"\#(session)","stream":false}"#)
                        #expect(response.status == .ok)
                        #expect(try h.json(response)["data"]?["answer"] == .string("t0 t1 "))
                    }
                }
                try await group.waitForAll()
            }
            let id = SkillSpaceController<SQLConversationStore>.conversationID(ownerID: localOwnerID, sessionID: session)
            let messages = try await h.store.messages(conversationID: id, ownerID: localOwnerID)
            #expect(messages.count == 10, "five turns in one conversation")
            #expect(SkillSpaceController<SQLConversationStore>.conversationID(ownerID: "someone else", sessionID: session) != id)
        }
    }

    @Test func aCancelledTaskIsRevokedAndBadInputIsRefusedInSkillSpacesShape() async throws {
        try await Harness.run(worker: false, configure: Self.configure) { h in
            let accepted = try h.json(try await h.post("/api/ai/qwen-async/", json: #"{"prompt":"never runs"}"#))
            let taskID = try #require(accepted["data"]?["task_id"]?.stringValue)
            let pending = try h.json(try await h.get("/api/tasks/status/\(taskID)/"))
            #expect(pending["state"] == .string("PENDING"))
            #expect(pending["meta"] == .null && pending["result"] == .null)
            #expect(try await h.post("/v1/tasks/\(taskID)/cancel", json: "{}").status == .ok)
            let revoked = try h.json(try await h.get("/api/tasks/status/\(taskID)/"))
            #expect(revoked["state"] == .string("REVOKED"))
            #expect(revoked["error"]?.stringValue?.isEmpty == false)

            let missing = try await h.post("/api/ai/qwen/", json: #"{"stream":true}"#)
            #expect(missing.status == .badRequest)
            let body = try h.json(missing)
            #expect(body["code"] == .int(400))
            #expect(body["message"]?.stringValue?.contains("prompt") == true)
            #expect(body["error"]?["param"] == .string("prompt"))
            #expect(try h.json(try await h.post("/api/ai/qwen/", json: #"{"prompt":"x","stream":"yes"}"#))["error"]?["param"] == .string("stream"))
            #expect(try h.json(try await h.get("/api/tasks/status/task_nope/"))["code"] == .int(404))
            // The OpenAI-style alias keeps OpenAI's error shape.
            #expect(try h.json(try await h.post("/api/chat/completions", json: "{}"))["code"] == nil)
        }
    }

    @Test func taskEventsBecomeTheConsumersMessages() throws {
        func message(_ kind: TaskEvent.Kind, _ token: String = "", _ data: JSONValue? = nil) -> String? {
            SkillSpaceController<SQLConversationStore>.message(for: TaskEvent(seq: 1, taskID: "task_1", kind: kind, token: token, data: data))
                .map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(message(.answer, "Python") == #"{"code":200,"token":"Python","type":"answer","task_id":"task_1"}"#)
        #expect(message(.thinking, "hm \"quoted\"") == #"{"code":200,"token":"hm \"quoted\"","type":"thinking","task_id":"task_1"}"#)
        #expect(message(.finish, "", .object(["content": .string("all")])) == #"{"code":200,"token":"","type":"finish","task_id":"task_1"}"#)
        #expect(message(.error, "", .object(["message": .string("boom")])) == #"{"code":200,"token":"系统错误: boom","type":"error","task_id":"task_1"}"#)
        #expect(message(.progress, "", .object(["restarted": .bool(true)])) == nil, "a takeover's restart has no seed message")
        #expect(message(.toolCalls) == nil)
    }
}
