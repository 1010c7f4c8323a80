/// One turn's use of a model, as `GET /v1/usage` adds it up: kept apart from the conversation, so
/// that deleting a conversation (or `store: false`) does not erase what it cost.
public struct UsageRecord: Sendable, Equatable {
    public var id: String
    public var ownerID: String
    public var apiKeyID: String?
    /// The model asked for (an alias resolved); `servedModel` when a fallback answered.
    public var model: String
    public var servedModel: String
    public var deployment: String?
    /// UTC `yyyy-MM-dd` of `createdAt`.
    public var day: String
    public var promptTokens: Int
    public var completionTokens: Int
    public var reasoningTokens: Int
    public var timeToFirstTokenMilliseconds: Int64?
    public var durationMilliseconds: Int64
    public var cacheHit: Bool
    /// Dollars, from the serving model's `price` (nil: no price configured).
    public var cost: Double?
    /// `complete`, `partial` (ended early) or `failed` (nothing arrived).
    public var outcome: String
    public var createdAt: Int64

    public init(
        id: String, ownerID: String, apiKeyID: String?, model: String, servedModel: String, deployment: String?, promptTokens: Int,
        completionTokens: Int, reasoningTokens: Int, timeToFirstTokenMilliseconds: Int64?, durationMilliseconds: Int64, cacheHit: Bool,
        cost: Double?, outcome: String, createdAt: Int64
    ) {
        self.id = id
        self.ownerID = ownerID
        self.apiKeyID = apiKeyID
        self.model = model
        self.servedModel = servedModel
        self.deployment = deployment
        self.day = Self.day(ofMilliseconds: createdAt)
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.reasoningTokens = reasoningTokens
        self.timeToFirstTokenMilliseconds = timeToFirstTokenMilliseconds
        self.durationMilliseconds = durationMilliseconds
        self.cacheHit = cacheHit
        self.cost = cost
        self.outcome = outcome
        self.createdAt = createdAt
    }

    /// The UTC day of a Unix time in milliseconds, as `yyyy-MM-dd` (civil-from-days, no Foundation).
    public static func day(ofMilliseconds milliseconds: Int64) -> String {
        let days = Int(milliseconds / 86_400_000) - (milliseconds < 0 && milliseconds % 86_400_000 != 0 ? 1 : 0)
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    }
}
