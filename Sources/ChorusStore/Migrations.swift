/// Versioned schema migrations. The same SQL runs on SQLite and PostgreSQL: TEXT and BIGINT
/// columns, millisecond timestamps, JSON kept as TEXT, partial unique indexes.
public struct Migration: Sendable {
    public let version: Int
    public let name: String
    public let statements: [String]
}

public enum Migrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "conversations and messages", statements: [
            """
            CREATE TABLE conversations (
                id TEXT PRIMARY KEY,
                owner_id TEXT NOT NULL,
                title TEXT,
                model TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX conversations_owner_updated ON conversations (owner_id, updated_at)",
            """
            CREATE TABLE messages (
                id TEXT PRIMARY KEY,
                conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
                owner_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                role TEXT NOT NULL,
                content TEXT NOT NULL,
                reasoning TEXT,
                parts TEXT,
                model TEXT,
                status TEXT NOT NULL,
                metadata TEXT NOT NULL,
                prompt_tokens BIGINT,
                completion_tokens BIGINT,
                turn_id TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX messages_conversation_order ON messages (conversation_id, created_at, seq)",
            // Exactly one assistant message per turn, whatever is retried or recovered.
            "CREATE UNIQUE INDEX messages_one_assistant_per_turn ON messages (turn_id) WHERE role = 'assistant'",
        ]),
        tasks,
        accounts,
        Migration(version: 4, name: "tool calls and names of messages", statements: [
            // JSON text: an assistant message's `tool_calls` array.
            "ALTER TABLE messages ADD COLUMN tool_calls TEXT",
            "ALTER TABLE messages ADD COLUMN tool_call_id TEXT",
            "ALTER TABLE messages ADD COLUMN name TEXT",
        ]),
        taskArtifacts,
        usageAndCache,
    ]
}
