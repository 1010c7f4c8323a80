extension Migrations {
    /// The files a command task left in its output folder, kept in the database so that every
    /// gateway can serve them (content as base64 TEXT, as `files` keeps uploads).
    static let taskArtifacts = Migration(version: 5, name: "task artifacts", statements: [
        """
        CREATE TABLE task_artifacts (
            task_id TEXT NOT NULL,
            owner_id TEXT NOT NULL,
            name TEXT NOT NULL,
            content_type TEXT NOT NULL,
            size BIGINT NOT NULL,
            content TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (task_id, name)
        )
        """,
    ])
}
