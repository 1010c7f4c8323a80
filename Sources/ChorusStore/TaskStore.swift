public import ChorusCore
import Foundation
import SQLKit

/// The outcome of presenting an `Idempotency-Key`.
public enum IdempotencyOutcome: Sendable, Equatable {
    /// First use: go ahead, then `completeIdempotency`.
    case proceed
    /// The same request was answered before: send this again.
    case replay(status: Int, body: String)
    /// The same key is being processed right now.
    case inFlight
    /// The same key came with a different body.
    case mismatch
}

/// A stored upload.
public struct StoredFile: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var filename: String
    public var contentType: String
    public var size: Int
    public var sha256: String
    public var content: [UInt8]
    public var createdAt: Int64

    public init(id: String, ownerID: String, filename: String, contentType: String, size: Int, sha256: String, content: [UInt8], createdAt: Int64) {
        self.id = id
        self.ownerID = ownerID
        self.filename = filename
        self.contentType = contentType
        self.size = size
        self.sha256 = sha256
        self.content = content
        self.createdAt = createdAt
    }
}

/// A worker's last heartbeat.
public struct WorkerRecord: Sendable, Equatable {
    public var id: String
    public var models: [String]
    public var host: String
    public var pid: Int
    public var startedAt: Int64
    public var heartbeatAt: Int64

    public init(id: String, models: [String], host: String, pid: Int, startedAt: Int64, heartbeatAt: Int64) {
        self.id = id
        self.models = models
        self.host = host
        self.pid = pid
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
    }
}

/// A queue entry that could not be processed.
public struct DeadLetter: Sendable, Equatable {
    public var id: String
    public var stream: String
    public var entryID: String
    public var taskID: String?
    public var payload: String
    public var reason: String
    public var deliveries: Int
    public var createdAt: Int64

    public init(id: String, stream: String, entryID: String, taskID: String?, payload: String, reason: String, deliveries: Int, createdAt: Int64) {
        self.id = id
        self.stream = stream
        self.entryID = entryID
        self.taskID = taskID
        self.payload = payload
        self.reason = reason
        self.deliveries = deliveries
        self.createdAt = createdAt
    }
}

/// Tasks, batches and what surrounds them. All state of asynchronous work lives here.
public struct SQLTaskStore: Sendable {
    let backend: any SQLBackend

    public init(backend: any SQLBackend) {
        self.backend = backend
    }

    private var isPostgres: Bool { backend.database.dialect.name == "postgresql" }

    // MARK: Submission

    public func create(batch: BatchRecord?, tasks: [TaskRecord]) async throws {
        try await backend.transaction { db in try await Self.insert(db, batch: batch, tasks: tasks) }
    }

    /// Inserts a batch and its tasks inside the caller's transaction.
    static func insert(_ db: any SQLDatabase, batch: BatchRecord?, tasks: [TaskRecord]) async throws {
        for statement in try insertStatements(batch: batch, tasks: tasks) {
            try await db.raw(statement).run()
        }
    }

    /// The `INSERT`s of a batch and its tasks: one for the batch, one (multi-row) for the tasks.
    static func insertStatements(batch: BatchRecord?, tasks: [TaskRecord]) throws -> [SQLQueryString] {
        var statements: [SQLQueryString] = []
        if let batch {
            statements.append("""
                INSERT INTO batches (id, owner_id, conversation_id, models, created_at)
                VALUES (\(bind: batch.id), \(bind: batch.ownerID), \(bind: batch.conversationID),
                        \(bind: try Self.text(.array(batch.models.map(JSONValue.string)))), \(bind: batch.createdAt))
                """)
        }
        if !tasks.isEmpty {
            let rows: [SQLQueryString] = try tasks.map { task in """
                (\(bind: task.id), \(bind: task.ownerID), \(bind: task.batchID), \(bind: task.type), \(bind: task.model),
                 \(bind: task.state.rawValue), \(bind: try Self.text(task.params)), NULL, NULL, NULL, NULL,
                 \(bind: task.conversationID), 0, NULL, NULL, 0, \(bind: task.createdAt), \(bind: task.createdAt),
                 NULL, NULL, \(bind: task.createdAt))
                """
            }
            statements.append("""
                INSERT INTO tasks (id, owner_id, batch_id, type, model, status, params, result, error, progress_current,
                                   progress_total, conversation_id, attempts, worker_id, lease_until, cancel_requested,
                                   enqueued_at, created_at, started_at, finished_at, updated_at)
                VALUES \(rows.joined(separator: ", "))
                """)
        }
        return statements
    }

    // MARK: Reads

    /// `ownerID` nil reads any owner's task (workers); otherwise only the owner's.
    public func task(id: String, ownerID: String?) async throws -> TaskRecord? {
        let row: (any SQLRow)?
        if let ownerID {
            row = try await backend.database.raw("SELECT * FROM tasks WHERE id = \(bind: id) AND owner_id = \(bind: ownerID)").first()
        } else {
            row = try await backend.database.raw("SELECT * FROM tasks WHERE id = \(bind: id)").first()
        }
        return try row.map(Self.decodeTask)
    }

    public func tasks(batchID: String) async throws -> [TaskRecord] {
        try await backend.database.raw("SELECT * FROM tasks WHERE batch_id = \(bind: batchID) ORDER BY created_at, id").all().map(Self.decodeTask)
    }

    public func batch(id: String, ownerID: String?) async throws -> BatchRecord? {
        try await backend.database.raw("SELECT * FROM batches WHERE id = \(bind: id) AND owner_id = COALESCE(\(bind: ownerID), owner_id)").first().map { row in
            BatchRecord(
                id: try row.decode(column: "id", as: String.self),
                ownerID: try row.decode(column: "owner_id", as: String.self),
                conversationID: try row.decode(column: "conversation_id", as: String.self),
                models: try Self.json(try row.decode(column: "models", as: String.self)).arrayValue?.compactMap(\.stringValue) ?? [],
                createdAt: try row.decode(column: "created_at", as: Int64.self))
        }
    }

    // MARK: Workers

    /// The conditional claim: a task runs once even when delivered twice. Succeeds for a pending
    /// task, or for a running one whose worker's lease has passed (it died). nil: someone else has it.
    public func claim(taskID: String, workerID: String, leaseUntil: Int64, now: Int64) async throws -> TaskRecord? {
        try await claimStatement(taskID: taskID, workerID: workerID, leaseUntil: leaseUntil, now: now, returning: "*").first.map(Self.decodeTask)
    }

    /// `claim` for a worker that has the task already (its queue entry carried it): only the
    /// number of claims comes back, this one included; nil when the claim was lost.
    public func claimAttempts(taskID: String, workerID: String, leaseUntil: Int64, now: Int64) async throws -> Int? {
        try await claimStatement(taskID: taskID, workerID: workerID, leaseUntil: leaseUntil, now: now, returning: "attempts")
            .first.map { Int(try $0.decode(column: "attempts", as: Int64.self)) }
    }

    private func claimStatement(taskID: String, workerID: String, leaseUntil: Int64, now: Int64, returning: SQLQueryString) async throws -> [any SQLRow] {
        // One statement (no BEGIN/SELECT/COMMIT round trips): a row comes back only if the claim won.
        //
        // On PostgreSQL the claim does not wait for its WAL flush (`synchronous_commit` off for its
        // own transaction only, set by `set_config(…, true)` in the statement): it is on the path
        // to every task's first token. A claim is a lease, not an outcome. The next synchronous
        // commit of any session (another submission, this task's finish) flushes it too, so only
        // a server crash within that instant can lose it; the task then looks unclaimed, is
        // claimed again, and the first worker's finish, which names its `worker_id`, is refused:
        // the task runs once more, as after a worker's crash. Submissions and finishes stay
        // durable before they are answered.
        let asynchronousCommit: SQLQueryString = isPostgres ? "FROM (SELECT set_config('synchronous_commit', 'off', true)) AS claim_commit" : ""
        return try await backend.writeReturning("""
            UPDATE tasks SET status = \(bind: TaskState.started.rawValue), worker_id = \(bind: workerID),
                lease_until = \(bind: leaseUntil), attempts = attempts + 1, started_at = COALESCE(started_at, \(bind: now)),
                updated_at = \(bind: now)
            \(asynchronousCommit)
            WHERE id = \(bind: taskID) AND cancel_requested = 0 AND (status = \(bind: TaskState.pending.rawValue)
                OR (status IN (\(bind: TaskState.started.rawValue), \(bind: TaskState.progress.rawValue)) AND lease_until < \(bind: now)))
            RETURNING \(returning)
            """)
    }

    /// Extends the leases of the tasks this worker runs; returns those whose cancellation was asked.
    public func renewLeases(workerID: String, taskIDs: [String], leaseUntil: Int64) async throws -> Set<String> {
        guard !taskIDs.isEmpty else { return [] }
        let ids = Self.list(taskIDs)
        return try await backend.transaction { db in
            try await db.raw("""
                UPDATE tasks SET lease_until = \(bind: leaseUntil)
                WHERE worker_id = \(bind: workerID) AND id IN \(ids)
                """).run()
            return try await Self.cancelRequested(db, ids: ids)
        }
    }

    /// Which of these tasks someone asked to cancel (a read: workers poll it often).
    public func cancelRequested(taskIDs: [String]) async throws -> Set<String> {
        guard !taskIDs.isEmpty else { return [] }
        return try await Self.cancelRequested(backend.database, ids: Self.list(taskIDs))
    }

    private static func cancelRequested(_ db: any SQLDatabase, ids: any SQLExpression) async throws -> Set<String> {
        let rows = try await db.raw("SELECT id FROM tasks WHERE id IN \(ids) AND cancel_requested = 1").all()
        return Set(try rows.map { try $0.decode(column: "id", as: String.self) })
    }

    /// `(?, ?, …)` for `IN`.
    static func list(_ values: [String]) -> any SQLExpression {
        SQLGroupExpression(SQLList(values.map { SQLBind($0) }))
    }

    public func updateProgress(taskID: String, workerID: String, current: Int, total: Int?) async throws {
        try await backend.write("""
            UPDATE tasks SET status = \(bind: TaskState.progress.rawValue), progress_current = \(bind: current),
                progress_total = \(bind: total), updated_at = \(bind: nowMilliseconds())
            WHERE id = \(bind: taskID) AND worker_id = \(bind: workerID) AND status IN (\(bind: TaskState.started.rawValue), \(bind: TaskState.progress.rawValue))
            """)
    }

    /// Gives a running task back (its worker is stopping): its lease ends now, so that the next
    /// claim, by any worker, takes it at once. False when this worker no longer held it.
    public func releaseLease(taskID: String, workerID: String, now: Int64) async throws -> Bool {
        try await !backend.writeReturning("""
            UPDATE tasks SET lease_until = \(bind: now - 1), updated_at = \(bind: now)
            WHERE id = \(bind: taskID) AND worker_id = \(bind: workerID) AND status IN (\(bind: TaskState.started.rawValue), \(bind: TaskState.progress.rawValue))
            RETURNING id
            """).isEmpty
    }

    /// Records the end of a task. With `workerID`, only while that worker still holds it.
    @discardableResult
    public func finish(taskID: String, workerID: String?, state: TaskState, result: JSONValue?, error: JSONValue?, now: Int64) async throws -> Bool {
        let holder: SQLQueryString = workerID.map { "AND worker_id = \(bind: $0)" } ?? ""
        return try await !backend.writeReturning("""
            UPDATE tasks SET status = \(bind: state.rawValue), result = \(bind: try result.map(Self.text)),
                error = \(bind: try error.map(Self.text)), finished_at = \(bind: now), updated_at = \(bind: now), lease_until = NULL
            WHERE id = \(bind: taskID) AND status NOT IN (\(bind: TaskState.success.rawValue), \(bind: TaskState.failure.rawValue), \(bind: TaskState.cancelled.rawValue)) \(holder)
            RETURNING id
            """).isEmpty
    }

    /// Asks for cancellation. A pending task is cancelled at once; a running one is stopped by its
    /// worker, which sees the flag with its next lease renewal. Returns the task as it is now.
    public func requestCancel(taskID: String, ownerID: String?) async throws -> TaskRecord? {
        try await backend.transaction { db in
            let now = nowMilliseconds()
            try await db.raw("""
                UPDATE tasks SET cancel_requested = 1, updated_at = \(bind: now)
                WHERE id = \(bind: taskID) AND owner_id = COALESCE(\(bind: ownerID), owner_id)
                """).run()
            try await db.raw("""
                UPDATE tasks SET status = \(bind: TaskState.cancelled.rawValue), finished_at = \(bind: now),
                    error = \(bind: try Self.text(.object(["message": .string("cancelled before it started"), "type": .string("cancelled")])))
                WHERE id = \(bind: taskID) AND owner_id = COALESCE(\(bind: ownerID), owner_id) AND status = \(bind: TaskState.pending.rawValue)
                """).run()
            return try await db.raw("SELECT * FROM tasks WHERE id = \(bind: taskID) AND owner_id = COALESCE(\(bind: ownerID), owner_id)").first().map(Self.decodeTask)
        }
    }

    /// Tasks the database says should be queued but may not be: pending and enqueued before
    /// `enqueuedBefore`, or running under a lease that has passed.
    public func tasksToRequeue(enqueuedBefore: Int64, now: Int64, limit: Int) async throws -> [TaskRecord] {
        try await backend.database.raw("""
            SELECT * FROM tasks
            WHERE (status = \(bind: TaskState.pending.rawValue) AND enqueued_at < \(bind: enqueuedBefore))
               OR (status IN (\(bind: TaskState.started.rawValue), \(bind: TaskState.progress.rawValue)) AND lease_until < \(bind: now) AND enqueued_at < \(bind: enqueuedBefore))
            ORDER BY enqueued_at LIMIT \(bind: limit)
            """).all().map(Self.decodeTask)
    }

    public func markEnqueued(taskIDs: [String], at time: Int64) async throws {
        guard !taskIDs.isEmpty else { return }
        try await backend.write("UPDATE tasks SET enqueued_at = \(bind: time) WHERE id IN \(Self.list(taskIDs))")
    }

    public func recordDeadLetter(_ letter: DeadLetter) async throws {
        try await backend.transaction { db in
            try await db.raw("""
                INSERT INTO sys_dead_letters (id, stream, entry_id, task_id, payload, reason, deliveries, created_at)
                VALUES (\(bind: letter.id), \(bind: letter.stream), \(bind: letter.entryID), \(bind: letter.taskID),
                        \(bind: letter.payload), \(bind: letter.reason), \(bind: letter.deliveries), \(bind: letter.createdAt))
                """).run()
        }
    }

    /// How many tasks are in each state, and how many dead letters are kept (for `/metrics`).
    public func counts() async throws -> (byState: [String: Int], deadLetters: Int) {
        var byState: [String: Int] = [:]
        for row in try await backend.database.raw("SELECT status, COUNT(*) AS n FROM tasks GROUP BY status").all() {
            byState[try row.decode(column: "status", as: String.self)] = Int(try row.decode(column: "n", as: Int64.self))
        }
        let dead = try await backend.database.raw("SELECT COUNT(*) AS n FROM sys_dead_letters").first()
        return (byState, Int(try dead?.decode(column: "n", as: Int64.self) ?? 0))
    }

    public func heartbeat(worker: WorkerRecord) async throws {
        try await backend.transaction { db in
            try await db.raw("""
                INSERT INTO workers (id, models, host, pid, started_at, heartbeat_at)
                VALUES (\(bind: worker.id), \(bind: worker.models.joined(separator: ",")), \(bind: worker.host), \(bind: worker.pid),
                        \(bind: worker.startedAt), \(bind: worker.heartbeatAt))
                ON CONFLICT (id) DO UPDATE SET models = excluded.models, host = excluded.host, pid = excluded.pid,
                    started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                """).run()
        }
    }

    public func workers() async throws -> [WorkerRecord] {
        try await backend.database.raw("SELECT * FROM workers ORDER BY id").all().map { row in
            WorkerRecord(
                id: try row.decode(column: "id", as: String.self),
                models: try row.decode(column: "models", as: String.self).split(separator: ",").map(String.init),
                host: try row.decode(column: "host", as: String.self), pid: Int(try row.decode(column: "pid", as: Int64.self)),
                startedAt: try row.decode(column: "started_at", as: Int64.self), heartbeatAt: try row.decode(column: "heartbeat_at", as: Int64.self))
        }
    }

    /// The tasks a worker holds now (started or in progress), oldest claim first: the admin
    /// console shows them under their worker.
    public func runningTasks(limit: Int = 500) async throws -> [TaskRecord] {
        try await backend.database.raw("""
            SELECT * FROM tasks WHERE status IN (\(bind: TaskState.started.rawValue), \(bind: TaskState.progress.rawValue))
                AND worker_id IS NOT NULL ORDER BY started_at LIMIT \(bind: limit)
            """).all().map(Self.decodeTask)
    }

    // MARK: Idempotency

    public func beginIdempotent(ownerID: String, key: String, requestHash: String, now: Int64) async throws -> IdempotencyOutcome {
        try await backend.transaction { db in
            if let row = try await db.raw("SELECT * FROM idempotency_keys WHERE owner_id = \(bind: ownerID) AND idem_key = \(bind: key)").first() {
                guard try row.decode(column: "request_hash", as: String.self) == requestHash else { return .mismatch }
                guard let status = try row.decode(column: "status_code", as: Int64?.self), let body = try row.decode(column: "response", as: String?.self) else {
                    return .inFlight
                }
                return .replay(status: Int(status), body: body)
            }
            try await db.raw("""
                INSERT INTO idempotency_keys (owner_id, idem_key, request_hash, status_code, response, created_at)
                VALUES (\(bind: ownerID), \(bind: key), \(bind: requestHash), NULL, NULL, \(bind: now))
                """).run()
            return .proceed
        }
    }

    public func completeIdempotent(ownerID: String, key: String, status: Int, body: String) async throws {
        try await backend.transaction { db in
            try await db.raw("""
                UPDATE idempotency_keys SET status_code = \(bind: status), response = \(bind: body)
                WHERE owner_id = \(bind: ownerID) AND idem_key = \(bind: key)
                """).run()
        }
    }

    /// Forgets a key whose request failed, so that a retry can go through.
    public func abandonIdempotent(ownerID: String, key: String) async throws {
        try await backend.transaction { db in
            try await db.raw("DELETE FROM idempotency_keys WHERE owner_id = \(bind: ownerID) AND idem_key = \(bind: key) AND status_code IS NULL").run()
        }
    }

    // MARK: Files

    public func save(file: StoredFile) async throws {
        try await backend.transaction { db in
            try await db.raw("""
                INSERT INTO files (id, owner_id, filename, content_type, size, sha256, content, created_at)
                VALUES (\(bind: file.id), \(bind: file.ownerID), \(bind: file.filename), \(bind: file.contentType), \(bind: file.size),
                        \(bind: file.sha256), \(bind: Data(file.content).base64EncodedString()), \(bind: file.createdAt))
                """).run()
        }
    }

    public func file(id: String, ownerID: String) async throws -> StoredFile? {
        try await backend.database.raw("SELECT * FROM files WHERE id = \(bind: id) AND owner_id = \(bind: ownerID)").first().map { row in
            StoredFile(
                id: try row.decode(column: "id", as: String.self), ownerID: try row.decode(column: "owner_id", as: String.self),
                filename: try row.decode(column: "filename", as: String.self), contentType: try row.decode(column: "content_type", as: String.self),
                size: Int(try row.decode(column: "size", as: Int64.self)), sha256: try row.decode(column: "sha256", as: String.self),
                content: Array(Data(base64Encoded: try row.decode(column: "content", as: String.self)) ?? Data()),
                createdAt: try row.decode(column: "created_at", as: Int64.self))
        }
    }

    // MARK: Rows

    static func decodeTask(_ row: any SQLRow) throws -> TaskRecord {
        TaskRecord(
            id: try row.decode(column: "id", as: String.self),
            ownerID: try row.decode(column: "owner_id", as: String.self),
            batchID: try row.decode(column: "batch_id", as: String?.self),
            type: try row.decode(column: "type", as: String.self),
            model: try row.decode(column: "model", as: String.self),
            state: TaskState(rawValue: try row.decode(column: "status", as: String.self)) ?? .failure,
            params: try json(try row.decode(column: "params", as: String.self)),
            result: try row.decode(column: "result", as: String?.self).map(json),
            error: try row.decode(column: "error", as: String?.self).map(json),
            progressCurrent: try row.decode(column: "progress_current", as: Int64?.self).map(Int.init),
            progressTotal: try row.decode(column: "progress_total", as: Int64?.self).map(Int.init),
            conversationID: try row.decode(column: "conversation_id", as: String?.self),
            attempts: Int(try row.decode(column: "attempts", as: Int64.self)),
            workerID: try row.decode(column: "worker_id", as: String?.self),
            leaseUntil: try row.decode(column: "lease_until", as: Int64?.self),
            cancelRequested: try row.decode(column: "cancel_requested", as: Int64.self) != 0,
            createdAt: try row.decode(column: "created_at", as: Int64.self),
            startedAt: try row.decode(column: "started_at", as: Int64?.self),
            finishedAt: try row.decode(column: "finished_at", as: Int64?.self),
            updatedAt: try row.decode(column: "updated_at", as: Int64.self))
    }

    static func text(_ value: JSONValue) throws -> String {
        String(decoding: try value.encoded(), as: UTF8.self)
    }

    static func json(_ text: String) throws -> JSONValue {
        try JSONValue.parse(Array(text.utf8))
    }
}
