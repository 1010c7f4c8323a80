extension Migrations {
    /// Accounts: roles, users, sessions, API keys, invites and the audit log. Secrets are stored
    /// only as hashes (bcrypt for passwords, SHA-256 for random tokens); booleans are 0/1.
    static let accounts = Migration(version: 3, name: "roles, users, sessions, api keys, invites, audit log", statements: [
        """
        CREATE TABLE roles (
            name TEXT PRIMARY KEY,
            permissions TEXT NOT NULL,
            builtin BIGINT NOT NULL,
            created_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE users (
            id TEXT PRIMARY KEY,
            email TEXT NOT NULL UNIQUE,
            name TEXT,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL,
            disabled BIGINT NOT NULL,
            token_budget BIGINT,
            tokens_used BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL
        )
        """,
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT NOT NULL
        )
        """,
        "CREATE INDEX sessions_user ON sessions (user_id)",
        """
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            user_id TEXT NOT NULL,
            name TEXT NOT NULL,
            scopes TEXT,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            last_used_at BIGINT,
            revoked_at BIGINT,
            token_budget BIGINT,
            tokens_used BIGINT NOT NULL
        )
        """,
        "CREATE INDEX api_keys_user ON api_keys (user_id, created_at)",
        """
        CREATE TABLE invites (
            id TEXT PRIMARY KEY,
            code_hash TEXT NOT NULL UNIQUE,
            role TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            used_by TEXT,
            used_at BIGINT
        )
        """,
        """
        CREATE TABLE audit_log (
            id TEXT PRIMARY KEY,
            created_at BIGINT NOT NULL,
            user_id TEXT,
            api_key_id TEXT,
            ip TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            params TEXT NOT NULL,
            status BIGINT NOT NULL,
            duration_ms BIGINT NOT NULL,
            request_id TEXT NOT NULL
        )
        """,
        "CREATE INDEX audit_log_created ON audit_log (created_at, id)",
        "CREATE INDEX audit_log_user ON audit_log (user_id, created_at)",
    ])
}
