/// What a request says about its turn beyond the chat body: who calls (for usage by key) and
/// whether it may be answered from the cache (`Cache-Control: no-cache` says not).
public struct TurnOptions: Sendable {
    public var apiKeyID: String?
    public var bypassCache = false

    public init(apiKeyID: String? = nil, bypassCache: Bool = false) {
        self.apiKeyID = apiKeyID
        self.bypassCache = bypassCache
    }
}
