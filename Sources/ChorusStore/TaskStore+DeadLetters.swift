public import ChorusCore
import SQLKit

/// What became of a dead letter's replay.
public enum DeadLetterReplay: Sendable, Equatable {
    /// The task is `PENDING` again as a fresh attempt and the dead letter is gone; queue the task.
    case replayed(DeadLetter, TaskRecord)
    /// Nothing was changed: the dead letter names no task, its task is gone, or the task is not
    /// in a state that a replay may restart (it succeeded, or is waiting or running).
    case refused(DeadLetter, reason: String)
}

/// The dead-letter table (`sys_dead_letters`): the record of queue entries given up on, in both
/// shapes (the Redis `dead` streams and the in-process list are copies kept for the queue's sake).
extension SQLTaskStore {
    public func deadLetters(limit: Int, queue: String? = nil) async throws -> [DeadLetter] {
        try await backend.database.raw("""
            SELECT * FROM sys_dead_letters WHERE stream = COALESCE(\(bind: queue), stream)
            ORDER BY created_at DESC, id DESC LIMIT \(bind: limit)
            """).all().map(Self.decodeDeadLetter)
    }

    public func deadLetter(id: String) async throws -> DeadLetter? {
        try await backend.database.raw("SELECT * FROM sys_dead_letters WHERE id = \(bind: id)").first().map(Self.decodeDeadLetter)
    }

    /// Deletes one dead letter; the letter as it was, nil when there was none.
    public func deleteDeadLetter(id: String) async throws -> DeadLetter? {
        try await backend.transaction { db in
            guard let letter = try await db.raw("SELECT * FROM sys_dead_letters WHERE id = \(bind: id)").first().map(Self.decodeDeadLetter) else { return nil }
            try await db.raw("DELETE FROM sys_dead_letters WHERE id = \(bind: id)").run()
            return letter
        }
    }

    /// Deletes every dead letter (of one queue, with `queue`); those deleted.
    public func purgeDeadLetters(queue: String?) async throws -> [DeadLetter] {
        try await backend.transaction { db in
            let letters = try await db.raw("SELECT * FROM sys_dead_letters WHERE stream = COALESCE(\(bind: queue), stream)").all().map(Self.decodeDeadLetter)
            try await db.raw("DELETE FROM sys_dead_letters WHERE stream = COALESCE(\(bind: queue), stream)").run()
            return letters
        }
    }

    /// Makes a dead letter's task a fresh attempt (`PENDING`, no attempts, no worker, result or
    /// error) and deletes the dead letter, in one transaction; nil when there is no such letter.
    /// A task that failed or was cancelled may be replayed; one that succeeded, or is waiting or
    /// running, is left alone.
    public func replayDeadLetter(id: String, now: Int64) async throws -> DeadLetterReplay? {
        try await backend.transaction { db in
            guard let letter = try await db.raw("SELECT * FROM sys_dead_letters WHERE id = \(bind: id)").first().map(Self.decodeDeadLetter) else { return nil }
            guard let taskID = letter.taskID else {
                return .refused(letter, reason: "The dead letter names no task (a malformed queue entry): there is nothing to replay. Delete it instead.")
            }
            let replayable = [TaskState.failure.rawValue, TaskState.cancelled.rawValue]
            let rows = try await db.raw("""
                UPDATE tasks SET status = \(bind: TaskState.pending.rawValue), result = NULL, error = NULL,
                    progress_current = NULL, progress_total = NULL, attempts = 0, worker_id = NULL, lease_until = NULL,
                    cancel_requested = 0, enqueued_at = \(bind: now), started_at = NULL, finished_at = NULL, updated_at = \(bind: now)
                WHERE id = \(bind: taskID) AND status IN \(SQLTaskStore.list(replayable))
                RETURNING *
                """).all()
            guard let task = try rows.first.map(Self.decodeTask) else {
                guard let current = try await db.raw("SELECT status FROM tasks WHERE id = \(bind: taskID)").first() else {
                    return .refused(letter, reason: "The dead letter's task \(taskID) no longer exists. Delete the dead letter instead.")
                }
                let state = try current.decode(column: "status", as: String.self)
                return .refused(letter, reason: "The dead letter's task \(taskID) is \(state): only a failed or cancelled task can be replayed.")
            }
            try await db.raw("DELETE FROM sys_dead_letters WHERE id = \(bind: id)").run()
            return .replayed(letter, task)
        }
    }

    static func decodeDeadLetter(_ row: any SQLRow) throws -> DeadLetter {
        DeadLetter(
            id: try row.decode(column: "id", as: String.self), stream: try row.decode(column: "stream", as: String.self),
            entryID: try row.decode(column: "entry_id", as: String.self), taskID: try row.decode(column: "task_id", as: String?.self),
            payload: try row.decode(column: "payload", as: String.self), reason: try row.decode(column: "reason", as: String.self),
            deliveries: Int(try row.decode(column: "deliveries", as: Int64.self)), createdAt: try row.decode(column: "created_at", as: Int64.self))
    }
}
