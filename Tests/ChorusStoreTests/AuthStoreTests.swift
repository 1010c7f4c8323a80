import ChorusCore
import ChorusStore
import Foundation
import Testing

/// Accounts on both dialects (in the store suite, which owns the PostgreSQL server).
extension ConversationStoreTests {
    @Test(arguments: Dialect.allCases)
    func credentialsResolveWithTheirRoleAndStopWhenRevokedExpiredOrDisabled(_ dialect: Dialect) async throws {
        try await withStore(dialect) { conversations, backend in
            let store = SQLAuthStore(backend: backend)
            let now = nowMilliseconds()
            try await store.ensureBuiltinRoles(now: now)
            try await store.ensureBuiltinRoles(now: now)  // idempotent
            #expect(try await store.roles().map(\.name) == ["admin", "user"])
            var user = UserRecord(id: "user_a", email: "a@example.com", name: nil, passwordHash: "$2b$04$x", role: "user", createdAt: now, updatedAt: now)
            #expect(try await store.createUser(user))
            #expect(try await !store.createUser(UserRecord(id: "user_b", email: "a@example.com", name: nil, passwordHash: "h", role: "user", createdAt: now, updatedAt: now)))

            let key = APIKeyRecord(id: "key_1", userID: user.id, name: "k", prefix: "sk-chorus-abcd", keyHash: Secrets.hash("sk-chorus-secret"),
                                   scopes: [.chat], createdAt: now, expiresAt: nil, tokenBudget: 100)
            try await store.create(apiKey: key)
            let credential = try #require(try await store.credential(apiKeyHash: Secrets.hash("sk-chorus-secret"), now: now))
            #expect(credential.user.id == user.id)
            #expect(credential.rolePermissions == BuiltinRole.permissions["user"])
            #expect(credential.apiKey?.scopes == [.chat])
            #expect(credential.apiKey?.tokenBudget == 100)
            #expect(try await store.credential(apiKeyHash: Secrets.hash("sk-chorus-other"), now: now) == nil)

            try await store.createSession(id: "sess_1", tokenHash: Secrets.hash("cs_token"), userID: user.id, now: now, expiresAt: now + 60_000)
            #expect(try await store.credential(sessionTokenHash: Secrets.hash("cs_token"), now: now)?.sessionID == "sess_1")
            #expect(try await store.credential(sessionTokenHash: Secrets.hash("cs_token"), now: now + 61_000) == nil, "expired")

            user.disabled = true
            try await store.update(user: user, endSessions: true)
            #expect(try await store.credential(apiKeyHash: Secrets.hash("sk-chorus-secret"), now: now) == nil, "disabled user")
            #expect(try await store.credential(sessionTokenHash: Secrets.hash("cs_token"), now: now) == nil)
            user.disabled = false
            try await store.update(user: user, endSessions: false)
            #expect(try await store.credential(apiKeyHash: Secrets.hash("sk-chorus-secret"), now: now) != nil)

            // Another user cannot revoke it; its owner can, at once.
            #expect(try await store.revokeAPIKey(id: "key_1", userID: "user_other", now: now) == nil)
            #expect(try await store.revokeAPIKey(id: "key_1", userID: user.id, now: now)?.revokedAt == now)
            #expect(try await store.credential(apiKeyHash: Secrets.hash("sk-chorus-secret"), now: now) == nil)

            try await store.chargeTokens(userID: nil, apiKeyID: "key_1", tokens: 40)
            #expect(try await store.apiKey(id: "key_1")?.tokensUsed == 40)

            // An owner filter of nil (admin:data) reads any owner's conversation; a wrong owner nothing.
            let started = try await conversations.startTurn(TurnStart(
                ownerID: user.id, conversationID: nil, newConversationID: "conv_x", title: nil, model: "m",
                messages: [StoredMessage(id: "msg_1", conversationID: "", ownerID: user.id, role: "user", content: "hi", turnID: "t", createdAt: now, updatedAt: now)],
                now: now))
            #expect(try await conversations.conversation(id: started.id, ownerID: nil)?.ownerID == user.id)
            #expect(try await conversations.conversation(id: started.id, ownerID: "user_other") == nil)
            #expect(try await conversations.messages(conversationID: started.id, ownerID: nil).count == 1)
        }
    }

    @Test(arguments: Dialect.allCases)
    func theAuditLogIsWrittenInBatchesAndPagedNewestFirst(_ dialect: Dialect) async throws {
        try await withStore(dialect) { _, backend in
            let store = SQLAuthStore(backend: backend)
            let writes = backend.committedWrites
            func entry(_ index: Int) -> AuditEntry {
                let user: String? = index % 2 == 0 ? "user_a" : nil
                let method = index % 3 == 0 ? "DELETE" : "POST"
                let path = index % 5 == 0 ? "/v1/api-keys/k" : "/v1/chat/completions"
                return AuditEntry(
                    id: String(format: "aud_%014d", index), createdAt: Int64(index), userID: user, apiKeyID: nil, ip: "10.0.0.1",
                    method: method, path: path, params: .object(["model": .string("m")]), status: 200, durationMilliseconds: 3,
                    requestID: "req_\(index)")
            }
            let entries = (0..<250).map(entry)
            try await store.append(audit: entries)
            #expect(backend.committedWrites - writes == 1)
            let first = try await store.audit(limit: 10, filter: .init())
            #expect(first.map(\.requestID) == (240..<250).reversed().map { "req_\($0)" })
            let next = try await store.audit(limit: 10, filter: .init(before: first.last?.id))
            #expect(next.first?.requestID == "req_239")
            #expect(try await store.audit(limit: 500, filter: .init(userID: "user_a")).count == 125)
            #expect(try await store.audit(limit: 500, filter: .init(method: "delete")).count == 84)
            #expect(try await store.audit(limit: 500, filter: .init(pathPrefix: "/v1/api-keys")).count == 50)
            // A time window: created_at is the index here, `since` inclusive, `until` exclusive.
            let window = try await store.audit(limit: 500, filter: .init(userID: "user_a", since: 100, until: 200))
            #expect(window.count == 50 && window.first?.requestID == "req_198" && window.last?.requestID == "req_100")
            #expect(first.first?.params == .object(["model": .string("m")]))
        }
    }
}
