public import Logging
import NIOCore
import NIOPosix
public import SQLKit
import SQLiteKit
import Synchronization

/// SQLite in WAL mode: one writer connection on a thread of its own, and reader connections on a
/// small thread pool. No statement runs on an event loop.
///
/// - Writes: SQLite has one writer at a time, so concurrent transactions are group-committed
///   (`GroupCommitter`), and the batch runs on the writer thread as one piece of work: `BEGIN
///   IMMEDIATE`, every transaction's statements and `COMMIT` back to back, with no hop between
///   statements. A busy wait for another process's lock, or a WAL checkpoint, happens there.
/// - Reads (`database`): one job on the reader pool per statement, on a connection of their own,
///   so they see committed data only and never wait behind the writer.
/// - Each connection parses a statement once and keeps it (`SQLiteHandle`).
public final class SQLiteBackend: SQLBackend {
    public let database: any SQLDatabase
    private let writer: SQLiteWriter
    private let writerThread: SQLiteWriterThread
    private let readers: SQLiteReaders
    private let writeLock = AsyncLock()
    private let writerGauge = PoolGauge()
    private let writes = Atomic<Int>(0)
    private let committer: GroupCommitter
    private let closed = Atomic<Bool>(false)

    public var committedWrites: Int { writes.load(ordering: .relaxed) }

    /// Opens (or creates) the database file. Several processes may open it at once (a server and
    /// the CLI); SQLite's file locks and the 5 s busy timeout keep them apart.
    public static func open(path: String, readers: Int = 2, logger: Logger) async throws -> SQLiteBackend {
        guard path != ":memory:", !path.isEmpty else {
            // Each connection would get a database of its own.
            throw SQLiteFailure(code: 21, message: "Chorus needs an SQLite file, not an in-memory database")
        }
        let readers = max(1, readers)
        let writerThread = SQLiteWriterThread()
        let readerThreads = NIOThreadPool(numberOfThreads: readers)
        readerThreads.start()
        do {
            // The writer first: it creates the file and turns on WAL before the readers open it.
            let writer = try await writerThread.threads.runIfActive { try SQLiteHandleSlot(SQLiteHandle(path: path, readOnly: false)) }
            let readerSlots = try await readerThreads.runIfActive {
                try (0..<readers).map { _ in try SQLiteHandleSlot(SQLiteHandle(path: path, readOnly: true)) }
            }
            return SQLiteBackend(
                writer: SQLiteWriter(slot: writer, logger: logger), writerThread: writerThread,
                readers: SQLiteReaders(slots: readerSlots, threads: readerThreads, logger: logger))
        } catch {
            try? await writerThread.threads.shutdownGracefully()
            try? await readerThreads.shutdownGracefully()
            throw error
        }
    }

    private init(writer: SQLiteWriter, writerThread: SQLiteWriterThread, readers: SQLiteReaders) {
        self.writer = writer
        self.writerThread = writerThread
        self.readers = readers
        self.database = readers
        let (lock, gauge) = (writeLock, writerGauge)
        self.committer = GroupCommitter(executor: writerThread) { body in
            try await lock.withLock {
                gauge.acquire()
                defer { gauge.release() }
                try await writer.raw("BEGIN IMMEDIATE").run()
                do {
                    try await body(writer)
                    try await writer.raw("COMMIT").run()
                } catch {
                    try? await writer.raw("ROLLBACK").run()
                    throw error
                }
            }
        }
    }

    /// One logical transaction; concurrent ones are committed together (see `GroupCommitter`).
    /// `committedWrites` counts logical transactions.
    public func transaction<T: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> T) async throws -> T {
        writerGauge.enter()
        defer { writerGauge.leave() }
        return try await withoutActuallyEscaping(body) { body in
            let result = Mutex<T?>(nil)
            let item = GroupCommitter.Item { db in
                let value = try await body(db)
                result.withLock { $0 = value }
            }
            try await committer.submit(item)
            writes.add(1, ordering: .relaxed)
            return result.withLock { $0! }
        }
    }

    public func write(_ statement: SQLQueryString) async throws {
        _ = try await writeReturning(statement)
    }

    /// A single statement joins the group commit like any transaction.
    public func writeReturning(_ statement: SQLQueryString) async throws -> [any SQLRow] {
        try await transaction { db in try await db.raw(statement).all() }
    }

    /// The writer (in use while a group commit writes; waiting: the other transactions in flight,
    /// several of which one batch may write) and the readers.
    public var pools: [PoolUsage] {
        [writerGauge.usage(pool: "sqlite_writer", maximum: 1), readers.gauge.usage(pool: "sqlite_readers", maximum: readers.slots.count)]
    }

    public func close() async throws {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // After the last write: the lock is free only when no batch is running.
        try await writeLock.withLock { writer.slot.close() }
        readers.close()
        try await writerThread.threads.shutdownGracefully()
        try await readers.threads.shutdownGracefully()
    }
}

/// A connection behind a lock. The lock is held for one statement at a time, which takes
/// microseconds, and only ever by the writer thread or a reader thread.
final class SQLiteHandleSlot: Sendable {
    private let handle: Mutex<SQLiteHandle>

    init(_ handle: sending SQLiteHandle) {
        self.handle = Mutex(handle)
    }

    func run(_ sql: String, binds: [SQLiteData], decoder: SQLiteDataDecoder) throws -> [any SQLRow] {
        try handle.withLock { try Self.rows($0, sql, binds, decoder) }
    }

    /// `run`, or nil without waiting when another thread holds this connection.
    func runIfFree(_ sql: String, binds: [SQLiteData], decoder: SQLiteDataDecoder) throws -> [any SQLRow]? {
        try handle.withLockIfAvailable { try Self.rows($0, sql, binds, decoder) }
    }

    private static func rows(_ handle: SQLiteHandle, _ sql: String, _ binds: [SQLiteData], _ decoder: SQLiteDataDecoder) throws -> [any SQLRow] {
        var rows: [any SQLRow] = []
        try handle.run(sql, binds: binds, decoder: decoder) { rows.append($0) }
        return rows
    }

    func close() {
        handle.withLock { $0.close() }
    }
}

/// The writer thread: an executor that the group commit's leader prefers while it writes a batch,
/// so the batch's statements, run synchronously by `SQLiteWriter`, all run there in one go.
final class SQLiteWriterThread: TaskExecutor {
    let threads = NIOThreadPool(numberOfThreads: 1)

    init() {
        threads.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        threads.submit { _ in job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Statement text and bound values, as SQLiteKit would produce them for the same expression.
private func compile(_ query: any SQLExpression, for database: some SQLDatabase, encoder: SQLiteDataEncoder) throws -> (String, [SQLiteData]) {
    let (sql, binds) = database.serialize(query)
    return (sql, try binds.map { try encoder.encode($0) })
}

/// The writer connection as an `SQLDatabase`. A statement runs synchronously on the calling thread,
/// which is the writer thread: only `SQLiteBackend`'s group commit hands it out, and it runs under
/// the writer thread's preference and the write lock.
struct SQLiteWriter: SQLDatabase {
    let slot: SQLiteHandleSlot
    let logger: Logger
    private let encoder = SQLiteDataEncoder()
    private let decoder = SQLiteDataDecoder()

    init(slot: SQLiteHandleSlot, logger: Logger) {
        self.slot = slot
        self.logger = logger
    }

    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }
    var dialect: any SQLDialect { SQLiteDialect() }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        eventLoop.makeCompletedFuture { try runNow(query, onRow) }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        try runNow(query, onRow)
    }

    private func runNow(_ query: any SQLExpression, _ onRow: (any SQLRow) -> Void) throws {
        let (sql, binds) = try compile(query, for: self, encoder: encoder)
        for row in try slot.run(sql, binds: binds, decoder: decoder) { onRow(row) }
    }
}

/// The reader connections as an `SQLDatabase`: each statement is one job on the reader threads,
/// on whichever connection is free.
final class SQLiteReaders: SQLDatabase {
    let slots: [SQLiteHandleSlot]
    let threads: NIOThreadPool
    let logger: Logger
    private let encoder = SQLiteDataEncoder()
    private let decoder = SQLiteDataDecoder()
    private let next = Atomic<UInt>(0)
    let gauge = PoolGauge()

    init(slots: [SQLiteHandleSlot], threads: NIOThreadPool, logger: Logger) {
        self.slots = slots
        self.threads = threads
        self.logger = logger
    }

    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }
    var dialect: any SQLDialect { SQLiteDialect() }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let eventLoop = self.eventLoop
        do {
            let (sql, binds) = try compile(query, for: self, encoder: encoder)
            let gauge = self.gauge
            gauge.enter()
            return threads.runIfActive(eventLoop: eventLoop) { try self.read(sql, binds) }.map { rows in
                for row in rows { onRow(row) }
            }.always { _ in gauge.leave() }
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
    }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let (sql, binds) = try compile(query, for: self, encoder: encoder)
        gauge.enter()
        defer { gauge.leave() }
        for row in try await threads.runIfActive({ try self.read(sql, binds) }) { onRow(row) }
    }

    /// On a reader thread: the first free connection, starting from a rotating one.
    private func read(_ sql: String, _ binds: [SQLiteData]) throws -> [any SQLRow] {
        gauge.acquire()
        defer { gauge.release() }
        let start = Int(next.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(slots.count))
        for step in 0..<slots.count {
            if let rows = try slots[(start + step) % slots.count].runIfFree(sql, binds: binds, decoder: decoder) {
                return rows
            }
        }
        return try slots[start].run(sql, binds: binds, decoder: decoder)
    }

    func close() {
        for slot in slots { slot.close() }
    }
}
