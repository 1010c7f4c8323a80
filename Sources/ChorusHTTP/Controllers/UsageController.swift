import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird

/// `GET /v1/usage` (the caller's own, by day and model) and `GET /v1/admin/usage` (everyone's, by
/// user, key, model and day; `admin:ops`): tokens, cache hits, cost and time to first token.
/// `from` / `to` are UTC days (`yyyy-MM-dd`, inclusive); `group_by` picks the dimensions.
struct UsageController: Sendable {
    let writer: BufferedWriter<UsageRecord>
    let store: SQLUsageStore

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/v1/usage", use: own)
        router.get("/v1/admin/usage", use: everyone)
    }

    @Sendable func own(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<UsageObject>> {
        try await summary(request, ownerID: context.ownerID, allowed: [.day, .model], defaults: [.day, .model])
    }

    @Sendable func everyone(_ request: Request, context: ChorusRequestContext) async throws -> EditedResponse<ListObject<UsageObject>> {
        try await summary(request, ownerID: request.uri.queryParameters["user_id"].map(String.init), allowed: Set(SQLUsageStore.Dimension.allCases), defaults: [.user, .model, .day])
    }

    private func summary(
        _ request: Request, ownerID: String?, allowed: Set<SQLUsageStore.Dimension>, defaults: [SQLUsageStore.Dimension]
    ) async throws -> EditedResponse<ListObject<UsageObject>> {
        let query = request.uri.queryParameters
        var dimensions = defaults
        if let text = query["group_by"] {
            dimensions = try text.split(separator: ",").map { name in
                guard let dimension = SQLUsageStore.Dimension(rawValue: String(name)), allowed.contains(dimension) else {
                    throw ChorusError.invalidRequest(
                        message: "'group_by' takes a comma-separated list of \(allowed.map(\.rawValue).sorted().joined(separator: ", ")).",
                        param: "group_by", code: "invalid_value")
                }
                return dimension
            }
        }
        let from = try day(query["from"].map(String.init), "from")
        let to = try day(query["to"].map(String.init), "to")
        // This process's latest turns first (another process's land within its flush interval).
        await writer.flush()
        let rows = try await store.summary(ownerID: ownerID, groupBy: dimensions, from: from, to: to)
        return ListObject(rows.map(UsageObject.init)).uncached()
    }

    private func day(_ text: String?, _ name: String) throws -> String? {
        guard let text else { return nil }
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2, parts.allSatisfy({ $0.allSatisfy(\.isNumber) }) else {
            throw ChorusError.invalidRequest(message: "'\(name)' must be a UTC day as yyyy-MM-dd.", param: name, code: "invalid_value")
        }
        return text
    }
}
