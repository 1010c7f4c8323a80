import Foundation
import SQLKit

extension SQLTaskStore {
    /// Replaces the task's artifacts (a run that was retried leaves only its last attempt's), in
    /// one transaction.
    public func replaceArtifacts(taskID: String, ownerID: String, artifacts: [TaskArtifact]) async throws {
        try await backend.transaction { db in
            try await db.raw("DELETE FROM task_artifacts WHERE task_id = \(bind: taskID)").run()
            for artifact in artifacts {
                try await db.raw("""
                    INSERT INTO task_artifacts (task_id, owner_id, name, content_type, size, content, created_at)
                    VALUES (\(bind: taskID), \(bind: ownerID), \(bind: artifact.name), \(bind: artifact.contentType),
                            \(bind: artifact.size), \(bind: Data(artifact.content).base64EncodedString()), \(bind: artifact.createdAt))
                    """).run()
            }
        }
    }

    /// The task's artifacts without their bytes, by name; only the owner's (`ownerID` nil: any).
    public func artifacts(taskID: String, ownerID: String?) async throws -> [TaskArtifact] {
        try await backend.database.raw("""
            SELECT name, content_type, size, created_at FROM task_artifacts
            WHERE task_id = \(bind: taskID) AND owner_id = COALESCE(\(bind: ownerID), owner_id) ORDER BY name
            """).all().map { row in
            TaskArtifact(
                name: try row.decode(column: "name", as: String.self), contentType: try row.decode(column: "content_type", as: String.self),
                size: Int(try row.decode(column: "size", as: Int64.self)), content: [],
                createdAt: try row.decode(column: "created_at", as: Int64.self))
        }
    }

    public func artifact(taskID: String, name: String, ownerID: String?) async throws -> TaskArtifact? {
        try await backend.database.raw("""
            SELECT * FROM task_artifacts
            WHERE task_id = \(bind: taskID) AND name = \(bind: name) AND owner_id = COALESCE(\(bind: ownerID), owner_id)
            """).first().map { row in
            TaskArtifact(
                name: try row.decode(column: "name", as: String.self), contentType: try row.decode(column: "content_type", as: String.self),
                size: Int(try row.decode(column: "size", as: Int64.self)),
                content: Array(Data(base64Encoded: try row.decode(column: "content", as: String.self)) ?? Data()),
                createdAt: try row.decode(column: "created_at", as: Int64.self))
        }
    }
}
