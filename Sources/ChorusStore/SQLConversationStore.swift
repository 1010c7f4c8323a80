public import ChorusCore
import Foundation
import SQLKit

/// `ConversationStore` over SQLKit; the same queries serve SQLite and PostgreSQL.
public struct SQLConversationStore: ConversationStore {
    let backend: any SQLBackend

    public init(backend: any SQLBackend) {
        self.backend = backend
    }

    public func startTurn(_ turn: TurnStart) async throws -> Conversation {
        if turn.conversationID == nil, singleStatementWrites {
            let (conversation, statements) = try Self.newConversationStatements(turn)
            try await backend.write(Self.combined(statements))
            return conversation
        }
        return try await backend.transaction { db in try await Self.startTurn(db, turn) }
    }

    public func startBatch(
        _ turn: TurnStart, makeTasks: @escaping @Sendable (Conversation) -> (BatchRecord, [TaskRecord])
    ) async throws -> (Conversation, BatchRecord, [TaskRecord]) {
        if turn.conversationID == nil, singleStatementWrites {
            let (conversation, statements) = try Self.newConversationStatements(turn)
            let (batch, tasks) = makeTasks(conversation)
            try await backend.write(Self.combined(statements + SQLTaskStore.insertStatements(batch: batch, tasks: tasks)))
            return (conversation, batch, tasks)
        }
        return try await backend.transaction { db in
            let conversation = try await Self.startTurn(db, turn)
            let (batch, tasks) = makeTasks(conversation)
            try await SQLTaskStore.insert(db, batch: batch, tasks: tasks)
            return (conversation, batch, tasks)
        }
    }

    /// PostgreSQL runs a new conversation's inserts as ONE statement (data-modifying `WITH`
    /// clauses), atomic by itself: one round trip instead of BEGIN, an INSERT per table and COMMIT.
    /// SQLite has no INSERT inside WITH; its transactions are in-process calls, committed in groups.
    private var singleStatementWrites: Bool { backend.database.dialect.name == "postgresql" }

    /// `WITH w1 AS (s1), w2 AS (s2), … sN`: the statements as one.
    private static func combined(_ statements: [SQLQueryString]) -> SQLQueryString {
        guard statements.count > 1 else { return statements[0] }
        let clauses = statements.dropLast().enumerated().map { index, statement -> SQLQueryString in
            "w\(unsafeRaw: String(index)) AS (\(statement))"
        }
        return "WITH \(clauses.joined(separator: ", ")) \(statements[statements.count - 1])"
    }

    /// The conversation row and the turn's messages (one multi-row INSERT).
    private static func newConversationStatements(_ turn: TurnStart) throws -> (Conversation, [SQLQueryString]) {
        let conversation = Conversation(
            id: turn.newConversationID, ownerID: turn.ownerID, title: turn.title, model: turn.model,
            createdAt: turn.now, updatedAt: turn.now)
        var statements: [SQLQueryString] = ["""
            INSERT INTO conversations (id, owner_id, title, model, created_at, updated_at)
            VALUES (\(bind: conversation.id), \(bind: conversation.ownerID), \(bind: conversation.title),
                    \(bind: conversation.model), \(bind: turn.now), \(bind: turn.now))
            """]
        if let messages = try insertMessages(turn.messages, conversationID: conversation.id, after: 0) {
            statements.append(messages)
        }
        return (conversation, statements)
    }

    private static func startTurn(_ db: any SQLDatabase, _ turn: TurnStart) async throws -> Conversation {
        if turn.conversationID == nil {
            let (conversation, statements) = try newConversationStatements(turn)
            for statement in statements { try await db.raw(statement).run() }
            return conversation
        }
        guard let id = turn.conversationID, var conversation = try await fetchConversation(db, id: id, ownerID: turn.ownerID) else {
            throw ChorusError.notFound(what: "conversation", id: turn.conversationID ?? "")
        }
        conversation.updatedAt = turn.now
        // Update first: on PostgreSQL the row lock makes concurrent turns of one conversation take
        // their seq numbers one after the other (SQLite serializes writes anyway).
        try await db.raw("UPDATE conversations SET updated_at = \(bind: turn.now) WHERE id = \(bind: id)").run()
        let last = try await db.raw("SELECT COALESCE(MAX(seq), 0) AS seq FROM messages WHERE conversation_id = \(bind: id)")
            .first().map { try $0.decode(column: "seq", as: Int64.self) } ?? 0
        if let messages = try insertMessages(turn.messages, conversationID: id, after: last) {
            try await db.raw(messages).run()
        }
        return conversation
    }

    public func ensureConversation(_ conversation: Conversation) async throws {
        try await backend.write("""
            INSERT INTO conversations (id, owner_id, title, model, created_at, updated_at)
            VALUES (\(bind: conversation.id), \(bind: conversation.ownerID), \(bind: conversation.title),
                    \(bind: conversation.model), \(bind: conversation.createdAt), \(bind: conversation.updatedAt))
            ON CONFLICT (id) DO NOTHING
            """)
    }

    public func saveAssistantMessage(_ message: StoredMessage) async throws {
        // One statement, atomic by itself: no BEGIN/COMMIT round trips.
        // seq orders messages created in the same millisecond; the turn's user message came first.
        try await backend.write("""
                INSERT INTO messages \(Self.messageColumns)
                VALUES (\(bind: message.id), \(bind: message.conversationID), \(bind: message.ownerID),
                        (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE conversation_id = \(bind: message.conversationID)),
                        \(bind: message.role), \(bind: message.content), \(bind: message.reasoning),
                        \(bind: try Self.encodeJSON(message.parts)), \(bind: message.model), \(bind: message.status.rawValue),
                        \(bind: try Self.encodeMetadata(message.metadata)), \(bind: message.usage.map { Int64($0.promptTokens) }),
                        \(bind: message.usage.map { Int64($0.completionTokens) }), \(bind: message.turnID),
                        \(bind: message.createdAt), \(bind: message.updatedAt),
                        \(bind: try Self.encodeJSON(message.toolCalls)), \(bind: message.toolCallID), \(bind: message.name))
                ON CONFLICT (id) DO UPDATE SET
                    content = excluded.content, reasoning = excluded.reasoning, status = excluded.status,
                    tool_calls = excluded.tool_calls,
                    metadata = excluded.metadata, prompt_tokens = excluded.prompt_tokens,
                    completion_tokens = excluded.completion_tokens, updated_at = excluded.updated_at
                """)
    }

    public func history(conversationID: String, ownerID: String, limit: Int) async throws -> [StoredMessage] {
        let rows = try await backend.database.raw("""
            SELECT * FROM messages WHERE conversation_id = \(bind: conversationID) AND owner_id = \(bind: ownerID)
            ORDER BY created_at DESC, seq DESC LIMIT \(bind: limit)
            """).all()
        return try rows.map(Self.decodeMessage).reversed()
    }

    public func conversations(ownerID: String, limit: Int, updatedBefore: Int64?, titleContains: String?) async throws -> [Conversation] {
        // The search is a case-insensitive substring; `%`, `_` and `\` in it are literal.
        let pattern = titleContains.map { text in
            "%" + text.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
        }
        let rows = try await backend.database.raw("""
            SELECT * FROM conversations WHERE owner_id = \(bind: ownerID)
            AND updated_at < \(bind: updatedBefore ?? Int64.max)
            AND (CAST(\(bind: pattern) AS TEXT) IS NULL OR LOWER(COALESCE(title, '')) LIKE CAST(\(bind: pattern) AS TEXT) ESCAPE '\\')
            ORDER BY updated_at DESC, id DESC LIMIT \(bind: limit)
            """).all()
        return try rows.map(Self.decodeConversation)
    }

    public func conversation(id: String, ownerID: String?) async throws -> Conversation? {
        try await Self.fetchConversation(backend.database, id: id, ownerID: ownerID)
    }

    public func messages(conversationID: String, ownerID: String?) async throws -> [StoredMessage] {
        try await backend.database.raw("""
            SELECT * FROM messages WHERE conversation_id = \(bind: conversationID) AND owner_id = COALESCE(\(bind: ownerID), owner_id)
            ORDER BY created_at, seq
            """).all().map(Self.decodeMessage)
    }

    public func renameConversation(id: String, ownerID: String?, title: String?) async throws -> Conversation? {
        try await backend.transaction { db in
            try await db.raw("""
                UPDATE conversations SET title = \(bind: title), updated_at = \(bind: nowMilliseconds())
                WHERE id = \(bind: id) AND owner_id = COALESCE(\(bind: ownerID), owner_id)
                """).run()
            return try await Self.fetchConversation(db, id: id, ownerID: ownerID)
        }
    }

    public func deleteConversation(id: String, ownerID: String?) async throws -> Bool {
        try await backend.transaction { db in
            guard try await Self.fetchConversation(db, id: id, ownerID: ownerID) != nil else { return false }
            try await db.raw("DELETE FROM messages WHERE conversation_id = \(bind: id)").run()
            try await db.raw("DELETE FROM conversations WHERE id = \(bind: id)").run()
            return true
        }
    }

    // MARK: Rows

    private static func fetchConversation(_ db: any SQLDatabase, id: String, ownerID: String?) async throws -> Conversation? {
        try await db.raw("SELECT * FROM conversations WHERE id = \(bind: id) AND owner_id = COALESCE(\(bind: ownerID), owner_id)")
            .first().map(decodeConversation)
    }

    private static let messageColumns: SQLQueryString = """
        (id, conversation_id, owner_id, seq, role, content, reasoning, parts, model, status,
         metadata, prompt_tokens, completion_tokens, turn_id, created_at, updated_at,
         tool_calls, tool_call_id, name)
        """

    /// One multi-row INSERT of a turn's messages, numbered from `last + 1`; nil when there are none.
    private static func insertMessages(_ messages: [StoredMessage], conversationID: String, after last: Int64) throws -> SQLQueryString? {
        guard !messages.isEmpty else { return nil }
        let rows = try messages.enumerated().map { index, message in
            var message = message
            message.conversationID = conversationID
            return try messageRow(message, seq: last + Int64(index + 1))
        }
        return "INSERT INTO messages \(messageColumns) VALUES \(rows.joined(separator: ", "))"
    }

    /// A message's `VALUES` tuple, in the order of `messageColumns`.
    private static func messageRow(_ message: StoredMessage, seq: Int64) throws -> SQLQueryString {
        """
        (\(bind: message.id), \(bind: message.conversationID), \(bind: message.ownerID), \(bind: seq),
         \(bind: message.role), \(bind: message.content), \(bind: message.reasoning),
         \(bind: try encodeJSON(message.parts)), \(bind: message.model), \(bind: message.status.rawValue),
         \(bind: try encodeMetadata(message.metadata)), \(bind: message.usage.map { Int64($0.promptTokens) }),
         \(bind: message.usage.map { Int64($0.completionTokens) }), \(bind: message.turnID),
         \(bind: message.createdAt), \(bind: message.updatedAt),
         \(bind: try encodeJSON(message.toolCalls)), \(bind: message.toolCallID), \(bind: message.name))
        """
    }

    private static func decodeConversation(_ row: any SQLRow) throws -> Conversation {
        Conversation(
            id: try row.decode(column: "id", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            title: try row.decode(column: "title", as: String?.self),
            model: try row.decode(column: "model", as: String?.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }

    private static func decodeMessage(_ row: any SQLRow) throws -> StoredMessage {
        let prompt = try row.decode(column: "prompt_tokens", as: Int64?.self)
        let completion = try row.decode(column: "completion_tokens", as: Int64?.self)
        let partsText = try row.decode(column: "parts", as: String?.self)
        let toolCallsText = try row.decode(column: "tool_calls", as: String?.self)
        let metadataText = try row.decode(column: "metadata", as: String.self)
        return StoredMessage(
            id: try row.decode(column: "id", as: String.self),
            conversationID: try row.decode(column: "conversation_id", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            role: try row.decode(column: "role", as: String.self),
            content: try row.decode(column: "content", as: String.self),
            reasoning: try row.decode(column: "reasoning", as: String?.self),
            parts: try partsText.map { try JSONValue.parse(Array($0.utf8)) },
            toolCalls: try toolCallsText.map { try JSONValue.parse(Array($0.utf8)) },
            toolCallID: try row.decode(column: "tool_call_id", as: String?.self),
            name: try row.decode(column: "name", as: String?.self),
            model: try row.decode(column: "model", as: String?.self),
            status: MessageStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .complete,
            metadata: try JSONValue.parse(Array(metadataText.utf8)).objectValue ?? [:],
            usage: prompt.map { Usage(promptTokens: Int($0), completionTokens: Int(completion ?? 0)) },
            turnID: try row.decode(column: "turn_id", as: String?.self),
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }

    private static func encodeJSON(_ value: JSONValue?) throws -> String? {
        try value.map { String(decoding: try $0.encoded(), as: UTF8.self) }
    }

    private static func encodeMetadata(_ metadata: [String: JSONValue]) throws -> String {
        String(decoding: try JSONValue.object(metadata).encoded(), as: UTF8.self)
    }
}
