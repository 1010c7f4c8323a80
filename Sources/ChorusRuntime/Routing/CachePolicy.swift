import ChorusCore

/// How a turn uses the response cache: under which key, for how long, and whether a cached
/// answer may be read (a `Cache-Control: no-cache` request writes a fresh one without reading).
public struct CachePolicy: Sendable, Equatable {
    public var key: String
    public var ttlSeconds: Double
    public var read: Bool

    /// Fields that change how an answer is delivered or filed, not what it says.
    static let deliveryFields: Set<String> = ["stream", "stream_options", "user", "metadata", "store", "cache", "conversation_id"]

    /// The policy for a request to `model` with this upstream `body` (messages included), or nil
    /// when it is not cached: neither the model nor the request opts in, the request opts out,
    /// or it samples with `temperature` > 0 and the model does not allow that. Removes the
    /// request's `cache` field from `body` (it is Chorus's, not the upstream's).
    static func make(model: ModelConfiguration, body: inout [String: JSONValue], ownerID: String, bypass: Bool) -> CachePolicy? {
        let asked = body.removeValue(forKey: "cache")
        var ttl = model.cache?.ttlSeconds
        switch asked {
        case .bool(false)?: return nil
        case .bool(true)?: ttl = ttl ?? 300
        case .object(let options)?:
            // Requests are validated (`ChatRequest.validateCache`); a task queued before that was
            // is bounded here, so that its expiry time cannot overflow.
            if let seconds = options["ttl_seconds"]?.doubleValue, seconds.isFinite, seconds > 0 {
                ttl = min(seconds, ChatRequest.maxCacheTTLSeconds)
            } else {
                ttl = ttl ?? 300
            }
        default: break
        }
        guard let ttl else { return nil }
        if let temperature = body["temperature"]?.doubleValue, temperature > 0, model.cache?.anyTemperature != true { return nil }
        var identity = body.filter { !deliveryFields.contains($0.key) }
        identity["model"] = .string(model.name)
        if model.cache?.shared != true { identity["owner"] = .string(ownerID) }
        // Keys sorted by the writer: the same request gives the same key in every process.
        guard let canonical = try? JSONValue.object(identity).encoded() else { return nil }
        return CachePolicy(key: "\(model.name):\(SHA256.hex(canonical))", ttlSeconds: ttl, read: !bypass)
    }
}
