import Foundation

/// The routing part of a model entry — `deployments`, `breaker`, `queue`, `fallbacks`, `aliases`,
/// `cache`, `refusal_patterns`, `price` — read from the YAML mapping itself: lists of mappings
/// are beyond the key-value reader the scalar settings go through.
extension ConfigurationLoader {
    static let routingKeys: Set<String> = ["deployments", "breaker", "queue", "fallbacks", "aliases", "cache", "refusal_patterns", "price"]
    static let deploymentKeys: Set<String> = ["base_url", "api_key_env", "upstream_model", "weight", "max_concurrency", "health_url", "health_interval_seconds"]

    static func readRouting(_ raw: [String: Any], into model: inout ModelConfiguration) throws {
        let prefix = "models.\(model.name)"
        let reader = RawReader(prefix: prefix)
        if let list = raw["deployments"] {
            guard let entries = list as? [Any], !entries.isEmpty else {
                throw ConfigurationError(key: "\(prefix).deployments", problem: "expected a non-empty list of mappings")
            }
            guard model.provider != .local else {
                throw ConfigurationError(key: "\(prefix).deployments", problem: "a `local` model runs one server; list deployments on `openai` models")
            }
            model.deployments = try entries.enumerated().map { index, entry in
                let deployment = RawReader(prefix: "\(prefix).deployments[\(index)]")
                let fields = try deployment.mapping(entry, allowed: deploymentKeys)
                guard let url = try deployment.string(fields, "base_url") ?? model.baseURL else {
                    throw ConfigurationError(key: "\(prefix).deployments[\(index)].base_url", problem: "missing; each deployment needs its server's base URL")
                }
                try checkHTTPURL(url, key: "\(prefix).deployments[\(index)].base_url")
                var settings = ModelConfiguration.Deployment(
                    baseURL: url, apiKeyEnv: try deployment.string(fields, "api_key_env") ?? model.apiKeyEnv,
                    upstreamModel: try deployment.string(fields, "upstream_model") ?? model.upstreamModel)
                settings.weight = try deployment.number(fields, "weight", range: 0.001...1_000_000) ?? 1
                settings.maxConcurrency = try deployment.number(fields, "max_concurrency", range: 1...1_000_000).map { Int($0) }
                if let health = try deployment.string(fields, "health_url") {
                    try checkHTTPURL(health, key: "\(prefix).deployments[\(index)].health_url")
                    settings.healthURL = health
                }
                settings.healthIntervalSeconds = try deployment.number(fields, "health_interval_seconds", range: 0.1...3600) ?? 5
                return settings
            }
        }
        if let value = raw["breaker"] {
            let fields = try reader.mapping(value, allowed: ["failures", "cooldown_seconds"], key: "breaker")
            var breaker = ModelConfiguration.Breaker()
            breaker.failures = try reader.number(fields, "breaker.failures", range: 1...1000).map { Int($0) } ?? breaker.failures
            breaker.cooldownSeconds = try reader.number(fields, "breaker.cooldown_seconds", range: 0.1...86_400) ?? breaker.cooldownSeconds
            model.breaker = breaker
        }
        if let value = raw["queue"] {
            let fields = try reader.mapping(value, allowed: ["max_waiting", "max_wait_seconds"], key: "queue")
            model.queue.maxWaiting = try reader.number(fields, "queue.max_waiting", range: 0...1_000_000).map { Int($0) } ?? model.queue.maxWaiting
            model.queue.maxWaitSeconds = try reader.number(fields, "queue.max_wait_seconds", range: 0...3600) ?? model.queue.maxWaitSeconds
        }
        model.fallbacks = try reader.strings(raw["fallbacks"], "fallbacks") ?? []
        model.aliases = try reader.strings(raw["aliases"], "aliases") ?? []
        if let value = raw["cache"] {
            let fields = try reader.mapping(value, allowed: ["ttl_seconds", "shared", "any_temperature"], key: "cache")
            guard let ttl = try reader.number(fields, "cache.ttl_seconds", range: 1...31_536_000) else {
                throw ConfigurationError(key: "\(prefix).cache.ttl_seconds", problem: "missing; how long a cached answer is reused")
            }
            var cache = ModelConfiguration.Cache(ttlSeconds: ttl)
            cache.shared = try reader.bool(fields, "cache.shared") ?? false
            cache.anyTemperature = try reader.bool(fields, "cache.any_temperature") ?? false
            model.cache = cache
        }
        let patterns = try reader.strings(raw["refusal_patterns"], "refusal_patterns") ?? []
        for (index, pattern) in patterns.enumerated() {
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                throw ConfigurationError(key: "\(prefix).refusal_patterns[\(index)]", problem: "not a valid regular expression: \(pattern)")
            }
        }
        model.refusalPatterns = patterns
        if let value = raw["price"] {
            let fields = try reader.mapping(value, allowed: ["prompt_per_million", "completion_per_million"], key: "price")
            model.price = ModelConfiguration.Price(
                promptPerMillion: try reader.number(fields, "price.prompt_per_million", range: 0...1_000_000) ?? 0,
                completionPerMillion: try reader.number(fields, "price.completion_per_million", range: 0...1_000_000) ?? 0)
        }
    }

    /// Fallbacks and aliases name models of this table, and no alias hides a model.
    static func checkRouting(_ models: [ModelConfiguration]) throws {
        let names = Set(models.map(\.name))
        var aliases: [String: String] = [:]
        for model in models {
            for fallback in model.fallbacks where !names.contains(fallback) || fallback == model.name {
                throw ConfigurationError(key: "models.\(model.name).fallbacks", problem: fallback == model.name ? "a model cannot fall back to itself" : "`\(fallback)` is not a model of this table")
            }
            for alias in model.aliases {
                if names.contains(alias) {
                    throw ConfigurationError(key: "models.\(model.name).aliases", problem: "`\(alias)` is already a model's name")
                }
                if let other = aliases[alias] {
                    throw ConfigurationError(key: "models.\(model.name).aliases", problem: "`\(alias)` is already an alias of `\(other)`")
                }
                aliases[alias] = model.name
            }
        }
    }

    static func checkHTTPURL(_ url: String, key: String) throws {
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ConfigurationError(key: key, problem: "`\(url)` is not an http(s) URL")
        }
    }
}

/// Typed reads from a YAML mapping, failing with the key's full name.
private struct RawReader {
    let prefix: String

    func mapping(_ value: Any, allowed: Set<String>, key: String? = nil) throws -> [String: Any] {
        let name = key.map { "\(prefix).\($0)" } ?? prefix
        guard let fields = value as? [String: Any] else {
            throw ConfigurationError(key: name, problem: "expected a mapping")
        }
        for field in fields.keys where !allowed.contains(field) {
            throw ConfigurationError(key: "\(name).\(field)", problem: "unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
        }
        return fields
    }

    private func field(_ fields: [String: Any], _ key: String) -> Any? {
        fields[String(key.split(separator: ".").last ?? "")]
    }

    func string(_ fields: [String: Any], _ key: String) throws -> String? {
        guard let value = field(fields, key) else { return nil }
        guard let text = value as? String else {
            throw ConfigurationError(key: "\(prefix).\(key)", problem: "expected a string")
        }
        return text
    }

    func number(_ fields: [String: Any], _ key: String, range: ClosedRange<Double>) throws -> Double? {
        guard let value = field(fields, key) else { return nil }
        let number: Double? = switch value {
        case let int as Int: Double(int)
        case let double as Double: double
        case let text as String: Double(text)
        default: nil
        }
        guard let number, range.contains(number) else {
            throw ConfigurationError(key: "\(prefix).\(key)", problem: "expected a number from \(range.lowerBound) to \(range.upperBound), got `\(value)`")
        }
        return number
    }

    func bool(_ fields: [String: Any], _ key: String) throws -> Bool? {
        guard let value = field(fields, key) else { return nil }
        guard let flag = value as? Bool else {
            throw ConfigurationError(key: "\(prefix).\(key)", problem: "expected true or false")
        }
        return flag
    }

    func strings(_ value: Any?, _ key: String) throws -> [String]? {
        guard let value else { return nil }
        guard let list = value as? [Any], let strings = list.map({ $0 as? String }) as? [String] else {
            throw ConfigurationError(key: "\(prefix).\(key)", problem: "expected a list of strings")
        }
        return strings
    }
}
