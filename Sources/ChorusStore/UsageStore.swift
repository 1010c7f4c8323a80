public import ChorusCore
import SQLKit

/// Usage records: appended in batches (`UsageLog`), summed by `GET /v1/usage` and
/// `GET /v1/admin/usage`.
public struct SQLUsageStore: Sendable {
    /// What a summary is grouped by.
    public enum Dimension: String, Sendable, CaseIterable {
        case day, model, user, key

        var column: String {
            switch self {
            case .day: "day"
            case .model: "model"
            case .user: "owner_id"
            case .key: "api_key_id"
            }
        }
    }

    /// One group of a summary; the dimensions not grouped by are nil.
    public struct Row: Sendable, Equatable {
        public var day: String?
        public var model: String?
        public var userID: String?
        public var apiKeyID: String?
        public var requests: Int
        public var promptTokens: Int
        public var completionTokens: Int
        public var reasoningTokens: Int
        public var cacheHits: Int
        public var cost: Double?
        public var averageTimeToFirstTokenMilliseconds: Double?
    }

    public let backend: any SQLBackend

    public init(backend: any SQLBackend) {
        self.backend = backend
    }

    public func append(_ records: [UsageRecord]) async throws {
        guard !records.isEmpty else { return }
        try await backend.transaction { db in
            for chunk in stride(from: 0, to: records.count, by: 100).map({ records[$0..<min($0 + 100, records.count)] }) {
                var query = SQLQueryString("""
                    INSERT INTO usage_records (id, owner_id, api_key_id, model, served_model, deployment, day, prompt_tokens,
                    completion_tokens, reasoning_tokens, ttft_ms, duration_ms, cache_hit, cost, outcome, created_at) VALUES
                    """)
                for (index, record) in chunk.enumerated() {
                    query.appendLiteral(index == 0 ? " (" : ", (")
                    query.appendInterpolation(bind: record.id); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.ownerID); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.apiKeyID); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.model); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.servedModel); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.deployment); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.day); query.appendLiteral(", ")
                    query.appendInterpolation(bind: Int64(record.promptTokens)); query.appendLiteral(", ")
                    query.appendInterpolation(bind: Int64(record.completionTokens)); query.appendLiteral(", ")
                    query.appendInterpolation(bind: Int64(record.reasoningTokens)); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.timeToFirstTokenMilliseconds); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.durationMilliseconds); query.appendLiteral(", ")
                    query.appendInterpolation(bind: Int64(record.cacheHit ? 1 : 0)); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.cost); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.outcome); query.appendLiteral(", ")
                    query.appendInterpolation(bind: record.createdAt)
                    query.appendLiteral(")")
                }
                try await db.raw(query).run()
            }
        }
    }

    /// Totals grouped by `dimensions`, for one owner (nil: everyone), between two UTC days
    /// (inclusive, `yyyy-MM-dd`), newest day first.
    public func summary(ownerID: String?, groupBy dimensions: [Dimension], from: String?, to: String?) async throws -> [Row] {
        let columns = dimensions.map(\.column)
        var query = SQLQueryString("SELECT ")
        for column in columns { query.appendLiteral("\(column), ") }
        query.appendLiteral("""
            COUNT(*) AS requests, CAST(SUM(prompt_tokens) AS DOUBLE PRECISION) AS prompt_tokens,
            CAST(SUM(completion_tokens) AS DOUBLE PRECISION) AS completion_tokens,
            CAST(SUM(reasoning_tokens) AS DOUBLE PRECISION) AS reasoning_tokens,
            CAST(SUM(cache_hit) AS DOUBLE PRECISION) AS cache_hits, CAST(SUM(cost) AS DOUBLE PRECISION) AS cost,
            CAST(AVG(ttft_ms) AS DOUBLE PRECISION) AS ttft_ms FROM usage_records WHERE 1 = 1
            """)
        if let ownerID { query.appendLiteral(" AND owner_id = "); query.appendInterpolation(bind: ownerID) }
        if let from { query.appendLiteral(" AND day >= "); query.appendInterpolation(bind: from) }
        if let to { query.appendLiteral(" AND day <= "); query.appendInterpolation(bind: to) }
        if !columns.isEmpty {
            query.appendLiteral(" GROUP BY \(columns.joined(separator: ", "))")
            let order = columns.map { $0 == "day" ? "day DESC" : $0 }
            query.appendLiteral(" ORDER BY \(order.joined(separator: ", "))")
        }
        return try await backend.database.raw(query).all().map { row in
            func text(_ dimension: Dimension) throws -> String? {
                dimensions.contains(dimension) ? try row.decode(column: dimension.column, as: String?.self) : nil
            }
            // PostgreSQL's SUM over BIGINT is NUMERIC: the query casts every total to a double.
            func number(_ column: String) throws -> Double? { try row.decode(column: column, as: Double?.self) }
            return Row(
                day: try text(.day), model: try text(.model), userID: try text(.user), apiKeyID: try text(.key),
                requests: Int(try row.decode(column: "requests", as: Int64.self)),
                promptTokens: Int(try number("prompt_tokens") ?? 0), completionTokens: Int(try number("completion_tokens") ?? 0),
                reasoningTokens: Int(try number("reasoning_tokens") ?? 0), cacheHits: Int(try number("cache_hits") ?? 0),
                cost: try number("cost"), averageTimeToFirstTokenMilliseconds: try number("ttft_ms"))
        }
    }
}
