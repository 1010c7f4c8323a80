import NIOCore
import SQLKit
import SQLiteKit
// The SQLite library that SQLiteNIO vendors (its C target), so the process holds one copy of
// SQLite: two copies opening the same file can break each other's POSIX locks.
import VaporCSQLite

/// One SQLite connection and its prepared statements, reused by SQL text.
///
/// Not thread-safe by itself: whoever owns it serializes access (`SQLiteHandleSlot`). SQLiteNIO
/// prepares every statement afresh and runs each as its own thread-pool job; here a statement is
/// parsed once per connection and run where the caller already is (a reader thread, the writer
/// thread).
final class SQLiteHandle {
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]

    /// Enough for every statement Chorus writes by hand; multi-row inserts of varying size add
    /// more, and the cache starts again when it is full.
    private static let maximumCachedStatements = 256

    init(path: String, readOnly: Bool) throws {
        var handle: OpaquePointer?
        // NOMUTEX: the slot that owns this handle is the lock.
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let status = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard status == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite_nio_sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite_nio_sqlite3_close_v2(handle)
            throw SQLiteFailure(code: status, message: "cannot open \(path): \(message)")
        }
        self.handle = handle
        sqlite_nio_sqlite3_busy_timeout(handle, 5000)
        var pragmas = ["PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON"]
        // A reader connection refuses writes, so a write that took the wrong path fails loudly
        // instead of racing the writer.
        if readOnly { pragmas.append("PRAGMA query_only = ON") }
        for pragma in pragmas {
            try run(pragma, binds: [], decoder: SQLiteDataDecoder()) { _ in }
        }
    }

    deinit { close() }

    func close() {
        for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
        statements = [:]
        if let handle { sqlite_nio_sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Runs one statement: binds, steps through every row, and leaves the statement reset for its
    /// next use.
    func run(_ sql: String, binds: [SQLiteData], decoder: SQLiteDataDecoder, onRow: (any SQLRow) -> Void) throws {
        guard let handle else { throw SQLiteFailure(code: SQLITE_MISUSE, message: "the database is closed") }
        let statement = try prepared(sql, on: handle)
        // Every parameter is bound on every run, so the last run's values are always replaced and
        // the bindings need no clearing. Clearing would cost a re-prepare: SQLite's planner
        // notes the parameters it looked at (a `column = ?` term's estimate, a LIKE pattern),
        // and `sqlite3_clear_bindings` expires any such statement, so the next step parses and
        // plans it again. `SELECT MAX(seq) … WHERE conversation_id = ?` is one.
        let parameters = Int(sqlite_nio_sqlite3_bind_parameter_count(statement))
        guard parameters == binds.count else {
            throw SQLiteFailure(code: SQLITE_RANGE, message: "\(binds.count) values for \(parameters) parameters in: \(sql)")
        }
        defer {
            sqlite_nio_sqlite3_reset(statement)
            Self.releaseLargeValues(binds, of: statement)
        }
        for (offset, value) in binds.enumerated() {
            let status = Self.bind(value, at: Int32(offset + 1), to: statement)
            guard status == SQLITE_OK else { throw failure(status, handle) }
        }
        var columns: SQLiteColumns?
        while true {
            let status = sqlite_nio_sqlite3_step(statement)
            if status == SQLITE_DONE { return }
            guard status == SQLITE_ROW else { throw failure(status, handle) }
            let names = columns ?? SQLiteColumns(statement)
            columns = names
            var values: [SQLiteData] = []
            values.reserveCapacity(names.names.count)
            for index in 0..<Int32(names.names.count) {
                values.append(Self.value(at: index, of: statement))
            }
            onRow(SQLiteValuesRow(columns: names, values: values, decoder: decoder))
        }
    }

    /// Values kept by a cached statement until its next run are SQLite's copies; the large ones
    /// (a file's bytes, a long message) are let go at once, by binding NULL in their place. The
    /// values a plan looks at are short (ids, states), so this does not expire a statement.
    private static func releaseLargeValues(_ binds: [SQLiteData], of statement: OpaquePointer) {
        for (offset, value) in binds.enumerated() {
            let size: Int
            switch value {
            case .text(let text): size = text.utf8.count
            case .blob(let bytes): size = bytes.readableBytes
            default: continue
            }
            if size > largeValueBytes { sqlite_nio_sqlite3_bind_null(statement, Int32(offset + 1)) }
        }
    }

    static let largeValueBytes = 4096

    /// The heap that this connection's prepared statements hold, their bound values included.
    func statementMemory() -> Int {
        guard let handle else { return 0 }
        var current: Int32 = 0
        var highest: Int32 = 0
        sqlite_nio_sqlite3_db_status(handle, SQLITE_DBSTATUS_STMT_USED, &current, &highest, 0)
        return Int(current)
    }

    /// How often SQLite has prepared `sql` again since it was cached (nil: not cached).
    func reprepareCount(of sql: String) -> Int32? {
        statements[sql].map { sqlite_nio_sqlite3_stmt_status($0, SQLITE_STMTSTATUS_REPREPARE, 0) }
    }

    private func prepared(_ sql: String, on handle: OpaquePointer) throws -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        if statements.count >= Self.maximumCachedStatements {
            for statement in statements.values { sqlite_nio_sqlite3_finalize(statement) }
            statements = [:]
        }
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        var moreThanOne = false
        let status = sql.withCString { text in
            let status = sqlite_nio_sqlite3_prepare_v3(handle, text, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, &tail)
            // Only the first statement of the text would run: refuse more than one.
            if status == SQLITE_OK, let tail { moreThanOne = !Self.isBlank(tail) }
            return status
        }
        guard status == SQLITE_OK, !moreThanOne, let statement else {
            sqlite_nio_sqlite3_finalize(statement)
            if moreThanOne { throw SQLiteFailure(code: SQLITE_MISUSE, message: "more than one statement in: \(sql)") }
            throw failure(status, handle)
        }
        statements[sql] = statement
        return statement
    }

    private static func isBlank(_ text: UnsafePointer<CChar>) -> Bool {
        var cursor = text
        while cursor.pointee != 0 {
            switch UInt8(bitPattern: cursor.pointee) {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: ";"): break
            default: return false
            }
            cursor += 1
        }
        return true
    }

    private func failure(_ status: Int32, _ handle: OpaquePointer) -> SQLiteFailure {
        SQLiteFailure(code: status, message: String(cString: sqlite_nio_sqlite3_errmsg(handle)))
    }

    private static func bind(_ value: SQLiteData, at index: Int32, to statement: OpaquePointer) -> Int32 {
        switch value {
        case .integer(let value):
            return sqlite_nio_sqlite3_bind_int64(statement, index, Int64(value))
        case .float(let value):
            return sqlite_nio_sqlite3_bind_double(statement, index, value)
        case .text(let value):
            // An empty string must still bind as text, and SQLite reads a null pointer as NULL.
            if value.isEmpty { return sqlite_nio_sqlite3_bind_text64(statement, index, "", 0, transient, UInt8(SQLITE_UTF8)) }
            var value = value
            return value.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) { text in
                    sqlite_nio_sqlite3_bind_text64(statement, index, text.baseAddress, UInt64(text.count), transient, UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let value):
            if value.readableBytes == 0 { return sqlite_nio_sqlite3_bind_zeroblob(statement, index, 0) }
            return value.withUnsafeReadableBytes { bytes in
                sqlite_nio_sqlite3_bind_blob64(statement, index, bytes.baseAddress, UInt64(bytes.count), transient)
            }
        case .null:
            return sqlite_nio_sqlite3_bind_null(statement, index)
        }
    }

    private static func value(at index: Int32, of statement: OpaquePointer) -> SQLiteData {
        switch sqlite_nio_sqlite3_column_type(statement, index) {
        case SQLITE_INTEGER:
            return .integer(SQLiteInt64(sqlite_nio_sqlite3_column_int64(statement, index)))
        case SQLITE_FLOAT:
            return .float(sqlite_nio_sqlite3_column_double(statement, index))
        case SQLITE_TEXT:
            // The pointer first, then the length (SQLite's documented order).
            let text = sqlite_nio_sqlite3_column_text(statement, index)
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            guard let text else { return .text("") }
            return .text(String(decoding: UnsafeBufferPointer(start: text, count: count), as: UTF8.self))
        case SQLITE_BLOB:
            let bytes = sqlite_nio_sqlite3_column_blob(statement, index)
            let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            if let bytes { buffer.writeBytes(UnsafeRawBufferPointer(start: bytes, count: count)) }
            return .blob(buffer)
        default:
            return .null
        }
    }
}

/// SQLITE_TRANSIENT: SQLite copies a bound value before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A failed SQLite call: the result code and SQLite's message.
public struct SQLiteFailure: Error, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { "SQLite error \(code): \(message)" }
}

/// A statement's column names, shared by its rows.
final class SQLiteColumns: Sendable {
    let names: [String]
    private let offsets: [String: Int]

    init(_ statement: OpaquePointer) {
        let count = sqlite_nio_sqlite3_column_count(statement)
        names = (0..<count).map { String(cString: sqlite_nio_sqlite3_column_name(statement, $0)) }
        offsets = Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
    }

    func offset(of column: String) -> Int? { offsets[column] }
}

/// One row, decoded as SQLiteKit decodes (`SQLiteDataDecoder`), so the repositories see the
/// same values as through SQLiteNIO.
struct SQLiteValuesRow: SQLRow {
    let columns: SQLiteColumns
    let values: [SQLiteData]
    let decoder: SQLiteDataDecoder

    var allColumns: [String] { columns.names }

    func contains(column: String) -> Bool { columns.offset(of: column) != nil }

    func decodeNil(column: String) throws -> Bool {
        guard let offset = columns.offset(of: column) else { return true }
        return values[offset] == .null
    }

    func decode<D: Decodable>(column: String, as type: D.Type) throws -> D {
        guard let offset = columns.offset(of: column) else {
            throw DecodingError.keyNotFound(
                SQLiteColumnKey(stringValue: column),
                .init(codingPath: [], debugDescription: "no column '\(column)' in the row (\(columns.names.joined(separator: ", ")))"))
        }
        return try decoder.decode(D.self, from: values[offset])
    }
}

private struct SQLiteColumnKey: CodingKey {
    let stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
