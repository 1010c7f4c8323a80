extension Migrations {
    /// Tasks, batches, dead letters, idempotency keys, files and worker heartbeats.
    static let tasks = Migration(version: 2, name: "tasks, batches, dead letters, idempotency, files, workers", statements: [
        """
        CREATE TABLE batches (
            id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            models TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            batch_id TEXT,
            type TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            params TEXT NOT NULL,
            result TEXT,
            error TEXT,
            progress_current BIGINT,
            progress_total BIGINT,
            conversation_id TEXT,
            attempts BIGINT NOT NULL,
            worker_id TEXT,
            lease_until BIGINT,
            cancel_requested BIGINT NOT NULL,
            enqueued_at BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            started_at BIGINT,
            finished_at BIGINT,
            updated_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX tasks_owner_created ON tasks (owner_id, created_at)",
        "CREATE INDEX tasks_batch ON tasks (batch_id)",
        "CREATE INDEX tasks_status_enqueued ON tasks (status, enqueued_at)",
        """
        CREATE TABLE sys_dead_letters (
            id TEXT PRIMARY KEY,
            stream TEXT NOT NULL,
            entry_id TEXT NOT NULL,
            task_id TEXT,
            payload TEXT NOT NULL,
            reason TEXT NOT NULL,
            deliveries BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE idempotency_keys (
            owner_id TEXT NOT NULL,
            idem_key TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status_code BIGINT,
            response TEXT,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (owner_id, idem_key)
        )
        """,
        """
        CREATE TABLE files (
            id TEXT PRIMARY KEY,
            owner_id TEXT NOT NULL,
            filename TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            content TEXT NOT NULL,
            created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            models TEXT NOT NULL,
            host TEXT NOT NULL,
            pid BIGINT NOT NULL,
            started_at BIGINT NOT NULL,
            heartbeat_at BIGINT NOT NULL
        )
        """,
    ])
}
