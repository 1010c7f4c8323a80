extension Migrations {
    /// What each turn used and cost, and the response cache of the embedded shape.
    static let usageAndCache = Migration(version: 6, name: "usage records and the response cache", statements: [
        """
        CREATE TABLE usage_records (
            id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            api_key_id TEXT,
            model TEXT NOT NULL,
            served_model TEXT NOT NULL,
            deployment TEXT,
            day TEXT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            reasoning_tokens BIGINT NOT NULL,
            ttft_ms BIGINT,
            duration_ms BIGINT NOT NULL,
            cache_hit BIGINT NOT NULL,
            cost DOUBLE PRECISION,
            outcome TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX usage_records_owner_day ON usage_records (owner_id, day)",
        "CREATE INDEX usage_records_day ON usage_records (day)",
        """
        CREATE TABLE response_cache (
            key TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            response TEXT NOT NULL,
            expires_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX response_cache_expiry ON response_cache (expires_at)",
    ])
}
