import ChorusCore
import ChorusProviders
import Configuration
public import Foundation
import Yams

/// A configuration problem, reported at start with the key that is wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    public var key: String
    public var problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "invalid configuration: `\(key)`: \(problem)" }
}

/// Reads `chorus.yaml`, then environment overrides (`CHORUS_HTTP_PORT` for `http.port`, …), then
/// command-line flags, each overriding the one before.
public enum ConfigurationLoader {
    static let topLevelKeys: Set<String> = ["auth", "limits", "http", "storage", "redis", "conversations", "upstream", "tasks", "files", "logging", "metrics", "tracing", "skillspace", "shutdown", "data_dir", "models"]
    static let sectionKeys: [String: Set<String>] = [
        "http": ["host", "port", "max_body_bytes", "cors_origins", "trusted_proxies", "backlog", "idle_timeout_seconds"],
        "auth": ["enabled", "registration", "default_role", "session_ttl_seconds", "bcrypt_cost", "bootstrap_admin_email", "cookie_secure"],
        "limits": [
            "ip_requests_per_minute", "ip_tokens_per_minute", "user_requests_per_minute", "user_tokens_per_minute",
            "key_requests_per_minute", "key_tokens_per_minute", "login_attempts_per_minute",
        ],
        "storage": ["sqlite_path", "postgres_url", "postgres_connections", "postgres_prepared_statements"],
        "redis": ["url", "connections", "blocking_connections", "prefix"],
        "conversations": ["history_messages", "store", "checkpoint_seconds", "on_disconnect"],
        "upstream": ["max_connections_per_host", "idle_connection_seconds"],
        "logging": ["level", "format"],
        "tasks": ["concurrency", "lease_seconds", "max_attempts", "event_retention_seconds", "requeue_after_seconds", "commands", "artifact_max_bytes"],
        "files": ["max_bytes"],
        "metrics": ["enabled", "scrape_token_env", "port"],
        "tracing": ["otlp_endpoint"],
        "shutdown": ["grace_seconds"],
        "skillspace": ["model"],
    ]
    static let modelKeys: Set<String> = Set<String>([
        "provider", "base_url", "api_key_env", "upstream_model", "timeouts", "owned_by", "upstream_streaming",
        "retries", "retry_backoff_seconds",
        "model_path", "server_binary", "context_size", "parallel", "gpu_layers", "extra_args", "startup_timeout",
    ]).union(routingKeys)
    static let timeoutKeys: Set<String> = ["connect", "first_token", "between_tokens", "total"]

    /// The configuration used when no file exists and none was asked for: the local SmolLM2 model
    /// installed by `scripts/setup.sh`.
    public static let defaultYAML = """
        models:
          local:
            provider: local
            model_path: models/SmolLM2-135M-Instruct.Q4_1.gguf
            server_binary: .venv/bin/llama-server
        """

    /// - Parameters:
    ///   - path: the YAML file; nil means `chorus.yaml` if it exists, else the built-in default.
    ///   - environment: the process environment (injected for tests).
    ///   - overrides: command-line flags as configuration keys (`http.port`).
    public static func load(path: String?, environment: [String: String] = ProcessInfo.processInfo.environment, overrides: [String: String] = [:]) async throws -> ChorusConfiguration {
        let yamlText: String
        let filePath = path ?? "chorus.yaml"
        if FileManager.default.fileExists(atPath: filePath) {
            guard let data = FileManager.default.contents(atPath: filePath) else {
                throw ConfigurationError(key: filePath, problem: "the file cannot be read")
            }
            yamlText = String(decoding: data, as: UTF8.self)
        } else if path != nil {
            throw ConfigurationError(key: filePath, problem: "the configuration file does not exist")
        } else {
            yamlText = defaultYAML
        }
        let folder = (filePath as NSString).deletingLastPathComponent
        return try parse(yaml: yamlText, environment: environment, overrides: overrides, baseDirectory: folder.isEmpty ? "." : folder)
    }

    /// - Parameter baseDirectory: relative paths in the file (data_dir, model_path, server_binary)
    ///   are relative to it: the folder of the configuration file.
    public static func parse(yaml: String, environment: [String: String] = [:], overrides: [String: String] = [:], baseDirectory: String = ".") throws -> ChorusConfiguration {
        func resolve(_ path: String) -> String {
            path.hasPrefix("/") || baseDirectory == "." ? path : baseDirectory + "/" + path
        }
        let document: [String: Any]
        do {
            let loaded = try Yams.load(yaml: yaml)
            guard let mapping = (loaded ?? [String: Any]()) as? [String: Any] else {
                throw ConfigurationError(key: "(root)", problem: "the file must be a YAML mapping")
            }
            document = mapping
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(key: "(file)", problem: "not valid YAML: \(error)")
        }
        try checkKeys(document)

        var overrideValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in overrides { overrideValues[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = ConfigValue(.string(value), isSecret: false) }
        // Flags, then `CHORUS_*` variables (`CHORUS_HTTP_PORT` for `http.port`), then the file:
        // swift-configuration's own environment provider and YAML snapshot.
        let file: any ConfigProvider = document.isEmpty
            ? InMemoryProvider(name: "file", values: [:])
            : try YAMLTextProvider(text: try scalarYAML(yaml, document: document), name: "file")
        let reader = ConfigReader(providers: [
            InMemoryProvider(name: "flags", values: overrideValues),
            EnvironmentVariablesProvider(environmentVariables: environment).prefixKeys(with: "chorus"),
            file,
        ])
        let values2 = Values(reader: reader)

        var config = ChorusConfiguration()
        config.http.host = try values2.string("http.host") ?? config.http.host
        config.http.port = try values2.int("http.port", range: 0...65535) ?? config.http.port
        config.http.maxBodyBytes = try values2.int("http.max_body_bytes", range: 1024...Int.max) ?? config.http.maxBodyBytes
        config.http.corsOrigins = try values2.list("http.cors_origins") ?? []
        config.http.trustedProxies = try values2.list("http.trusted_proxies") ?? []
        config.http.backlog = try values2.int("http.backlog", range: 1...65535) ?? config.http.backlog
        config.http.idleTimeoutSeconds = try values2.double("http.idle_timeout_seconds", range: 0.1...86_400) ?? config.http.idleTimeoutSeconds
        config.auth.enabled = try values2.bool("auth.enabled") ?? config.auth.enabled
        config.auth.registration = try values2.choice("auth.registration", ChorusConfiguration.Auth.Registration.self) ?? config.auth.registration
        config.auth.defaultRole = try values2.string("auth.default_role") ?? config.auth.defaultRole
        config.auth.sessionTTLSeconds = try values2.int("auth.session_ttl_seconds", range: 1...31_536_000) ?? config.auth.sessionTTLSeconds
        config.auth.bcryptCost = try values2.int("auth.bcrypt_cost", range: 4...15) ?? config.auth.bcryptCost
        config.auth.bootstrapAdminEmail = try values2.string("auth.bootstrap_admin_email")?.lowercased() ?? config.auth.bootstrapAdminEmail
        config.auth.cookieSecure = try values2.choice("auth.cookie_secure", ChorusConfiguration.Auth.CookieSecure.self) ?? config.auth.cookieSecure
        config.limits.ipRequestsPerMinute = try values2.int("limits.ip_requests_per_minute", range: 0...100_000_000) ?? 0
        config.limits.ipTokensPerMinute = try values2.int("limits.ip_tokens_per_minute", range: 0...1_000_000_000) ?? 0
        config.limits.userRequestsPerMinute = try values2.int("limits.user_requests_per_minute", range: 0...100_000_000) ?? 0
        config.limits.userTokensPerMinute = try values2.int("limits.user_tokens_per_minute", range: 0...1_000_000_000) ?? 0
        config.limits.keyRequestsPerMinute = try values2.int("limits.key_requests_per_minute", range: 0...100_000_000) ?? 0
        config.limits.keyTokensPerMinute = try values2.int("limits.key_tokens_per_minute", range: 0...1_000_000_000) ?? 0
        config.limits.loginAttemptsPerMinute = try values2.int("limits.login_attempts_per_minute", range: 0...100_000_000) ?? config.limits.loginAttemptsPerMinute
        config.dataDirectory = resolve(try values2.string("data_dir") ?? config.dataDirectory)
        config.storage.sqlitePath = try values2.string("storage.sqlite_path").map(resolve) ?? (config.dataDirectory + "/chorus.sqlite")
        if let url = try values2.string("storage.postgres_url"), !url.isEmpty {
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ConfigurationError(key: "storage.postgres_url", problem: "expected postgres://user:password@host:port/database")
            }
            config.storage.postgresURL = url
        }
        config.storage.postgresConnections = try values2.int("storage.postgres_connections", range: 1...1000) ?? config.storage.postgresConnections
        config.storage.postgresPreparedStatements =
            try values2.int("storage.postgres_prepared_statements", range: 0...10_000) ?? config.storage.postgresPreparedStatements
        if let url = try values2.string("redis.url"), !url.isEmpty {
            guard url.hasPrefix("redis://") else {
                throw ConfigurationError(key: "redis.url", problem: "expected redis://[user:password@]host:port[/db]")
            }
            config.redis.url = url
        }
        config.redis.connections = try values2.int("redis.connections", range: 1...256) ?? config.redis.connections
        config.redis.blockingConnections = try values2.int("redis.blocking_connections", range: 1...1024) ?? config.redis.blockingConnections
        config.redis.prefix = try values2.string("redis.prefix") ?? config.redis.prefix
        config.conversations.historyMessages = try values2.int("conversations.history_messages", range: 1...10_000) ?? config.conversations.historyMessages
        config.conversations.store = try values2.bool("conversations.store") ?? config.conversations.store
        config.conversations.checkpointSeconds = try values2.double("conversations.checkpoint_seconds", range: 0.1...3600) ?? config.conversations.checkpointSeconds
        if let policy = try values2.string("conversations.on_disconnect") {
            guard let value = ChorusConfiguration.DisconnectPolicy(rawValue: policy) else {
                throw ConfigurationError(key: "conversations.on_disconnect", problem: "expected `cancel` or `continue`, got `\(policy)`")
            }
            config.conversations.onDisconnect = value
        }
        config.upstream.maxConnectionsPerHost = try values2.int("upstream.max_connections_per_host", range: 1...1_000_000) ?? config.upstream.maxConnectionsPerHost
        config.upstream.idleConnectionSeconds = try values2.double("upstream.idle_connection_seconds", range: 1...86_400) ?? config.upstream.idleConnectionSeconds
        config.tasks.concurrency = try values2.int("tasks.concurrency", range: 1...10_000) ?? config.tasks.concurrency
        config.tasks.leaseSeconds = try values2.double("tasks.lease_seconds", range: 1...3600) ?? config.tasks.leaseSeconds
        config.tasks.maxAttempts = try values2.int("tasks.max_attempts", range: 1...100) ?? config.tasks.maxAttempts
        config.tasks.eventRetentionSeconds = try values2.int("tasks.event_retention_seconds", range: 1...2_592_000) ?? config.tasks.eventRetentionSeconds
        config.tasks.requeueAfterSeconds = try values2.double("tasks.requeue_after_seconds", range: 1...86_400) ?? config.tasks.requeueAfterSeconds
        config.tasks.artifactMaxBytes = try values2.int("tasks.artifact_max_bytes", range: 0...1_073_741_824) ?? config.tasks.artifactMaxBytes
        config.tasks.commands = try commands((document["tasks"] as? [String: Any])?["commands"])
        config.files.maxBytes = try values2.int("files.max_bytes", range: 1...1_073_741_824) ?? config.files.maxBytes
        config.metrics.enabled = try values2.bool("metrics.enabled") ?? config.metrics.enabled
        if let name = try values2.string("metrics.scrape_token_env") {
            guard let token = environment[name], token.count >= 16 else {
                throw ConfigurationError(key: "metrics.scrape_token_env", problem: "`\(name)` must hold a token of at least 16 characters")
            }
            config.metrics.scrapeToken = token
        }
        if let endpoint = try values2.string("tracing.otlp_endpoint"), !endpoint.isEmpty {
            guard endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://") else {
                throw ConfigurationError(key: "tracing.otlp_endpoint", problem: "expected an http:// or https:// URL, got `\(endpoint)`")
            }
            config.tracing.otlpEndpoint = endpoint
        }
        config.metrics.port = try values2.int("metrics.port", range: 1...65535) ?? config.metrics.port
        config.shutdown.graceSeconds = try values2.double("shutdown.grace_seconds", range: 0...86_400) ?? config.shutdown.graceSeconds
        config.logging.level = try values2.string("logging.level") ?? config.logging.level
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(config.logging.level) else {
            throw ConfigurationError(key: "logging.level", problem: "expected one of trace, debug, info, notice, warning, error, critical; got `\(config.logging.level)`")
        }
        config.logging.format = try values2.string("logging.format") ?? config.logging.format
        guard ["text", "json"].contains(config.logging.format) else {
            throw ConfigurationError(key: "logging.format", problem: "expected `text` or `json`, got `\(config.logging.format)`")
        }

        let modelNames = (document["models"] as? [String: Any]).map { Array($0.keys).sorted() } ?? []
        let rawModels = document["models"] as? [String: Any] ?? [:]
        config.models = try modelNames.map { name in
            var model = try model(named: name, values: values2, raw: rawModels[name] as? [String: Any] ?? [:], dataDirectory: config.dataDirectory, resolve: resolve)
            try readRouting(rawModels[name] as? [String: Any] ?? [:], into: &model)
            return model
        }
        try checkRouting(config.models)
        if let name = try values2.string("skillspace.model") {
            guard config.models.contains(where: { $0.name == name }) else {
                throw ConfigurationError(key: "skillspace.model", problem: "`\(name)` is not a model under `models`")
            }
            config.skillSpace.model = name
        } else {
            config.skillSpace.model = config.models.first { $0.name == "local" }?.name ?? config.models.first { $0.provider == .local }?.name
        }
        return config
    }

    private static func model(named name: String, values: Values, raw: [String: Any], dataDirectory: String, resolve: (String) -> String) throws -> ModelConfiguration {
        let prefix = "models.\(name)"
        guard let providerName = try values.string("\(prefix).provider") else {
            throw ConfigurationError(key: "\(prefix).provider", problem: "missing; expected one of \(ModelConfiguration.Provider.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let provider = ModelConfiguration.Provider(rawValue: providerName) else {
            throw ConfigurationError(key: "\(prefix).provider", problem: "expected one of \(ModelConfiguration.Provider.allCases.map(\.rawValue).joined(separator: ", ")), got `\(providerName)`")
        }
        let defaults = ModelTimeouts()
        let timeouts = ModelTimeouts(
            connect: try values.double("\(prefix).timeouts.connect", range: 0.001...86_400) ?? defaults.connect,
            firstToken: try values.double("\(prefix).timeouts.first_token", range: 0.001...86_400) ?? defaults.firstToken,
            betweenTokens: try values.double("\(prefix).timeouts.between_tokens", range: 0.001...86_400) ?? defaults.betweenTokens,
            total: try values.double("\(prefix).timeouts.total", range: 0.001...604_800) ?? defaults.total)
        var model = ModelConfiguration(
            name: name, provider: provider, baseURL: nil,
            apiKeyEnv: try values.string("\(prefix).api_key_env"),
            upstreamModel: try values.string("\(prefix).upstream_model") ?? name,
            timeouts: timeouts,
            ownedBy: try values.string("\(prefix).owned_by") ?? (provider == .local ? "local" : "chorus"),
            local: nil)
        if let streaming = try values.string("\(prefix).upstream_streaming") {
            guard let flag = Bool(streaming) else {
                throw ConfigurationError(key: "\(prefix).upstream_streaming", problem: "expected true or false, got `\(streaming)`")
            }
            model.upstreamStreaming = flag
        }
        model.retries = try values.int("\(prefix).retries", range: 0...10) ?? model.retries
        model.retryBackoffSeconds = try values.double("\(prefix).retry_backoff_seconds", range: 0...60) ?? model.retryBackoffSeconds
        switch provider {
        case .openai:
            // Listed deployments carry their own URLs (the flat one, if any, is their default).
            if raw["deployments"] != nil, try values.string("\(prefix).base_url") == nil { break }
            guard let url = try values.string("\(prefix).base_url") else {
                throw ConfigurationError(key: "\(prefix).base_url", problem: "missing; an `openai` model needs the server's base URL, e.g. https://api.openai.com/v1")
            }
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ConfigurationError(key: "\(prefix).base_url", problem: "`\(url)` is not an http(s) URL")
            }
            model.baseURL = url
        case .gemini:
            let url = try values.string("\(prefix).base_url") ?? GeminiProvider.defaultBaseURL
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
                throw ConfigurationError(key: "\(prefix).base_url", problem: "`\(url)` is not an http(s) URL")
            }
            model.baseURL = url
        case .local:
            guard let modelPath = try values.string("\(prefix).model_path") else {
                throw ConfigurationError(key: "\(prefix).model_path", problem: "missing; a `local` model needs a GGUF file")
            }
            model.local = LocalModelSettings(
                name: name,
                serverBinary: resolve(try values.string("\(prefix).server_binary") ?? ".venv/bin/llama-server"),
                modelPath: resolve(modelPath),
                contextSize: try values.int("\(prefix).context_size", range: 128...1_048_576) ?? 8192,
                parallel: try values.int("\(prefix).parallel", range: 1...256) ?? 4,
                gpuLayers: try values.int("\(prefix).gpu_layers", range: 0...10_000),
                extraArguments: try values.stringArray("\(prefix).extra_args") ?? [],
                logPath: "\(dataDirectory)/logs/local-\(name).log",
                startupTimeout: try values.double("\(prefix).startup_timeout", range: 1...3600) ?? 120)
        }
        return model
    }

    /// The file for the key-value reader: without `deployments` (lists of mappings, which that
    /// reader rejects; `readRouting` reads them from the document).
    private static func scalarYAML(_ yaml: String, document: [String: Any]) throws -> String {
        guard var models = document["models"] as? [String: Any],
              models.values.contains(where: { ($0 as? [String: Any])?["deployments"] != nil }) else { return yaml }
        for (name, value) in models {
            guard var model = value as? [String: Any] else { continue }
            model["deployments"] = nil
            models[name] = model
        }
        var scalars = document
        scalars["models"] = models
        return try Yams.dump(object: scalars)
    }

    /// Unknown keys are almost always typos; say which.
    private static func checkKeys(_ document: [String: Any]) throws {
        for key in document.keys where !topLevelKeys.contains(key) {
            throw ConfigurationError(key: key, problem: "unknown key; expected one of \(topLevelKeys.sorted().joined(separator: ", "))")
        }
        for (section, allowed) in sectionKeys {
            guard let value = document[section] else { continue }
            guard let mapping = value as? [String: Any] else {
                throw ConfigurationError(key: section, problem: "expected a mapping")
            }
            for key in mapping.keys where !allowed.contains(key) {
                throw ConfigurationError(key: "\(section).\(key)", problem: "unknown key; expected one of \(allowed.sorted().joined(separator: ", "))")
            }
        }
        guard let models = document["models"] else { return }
        guard let mapping = models as? [String: Any] else {
            throw ConfigurationError(key: "models", problem: "expected a mapping from model name to settings")
        }
        for (name, value) in mapping {
            guard let model = value as? [String: Any] else {
                throw ConfigurationError(key: "models.\(name)", problem: "expected a mapping of settings")
            }
            for key in model.keys where !modelKeys.contains(key) {
                throw ConfigurationError(key: "models.\(name).\(key)", problem: "unknown key; expected one of \(modelKeys.sorted().joined(separator: ", "))")
            }
            if let timeouts = model["timeouts"] {
                guard let timeoutMapping = timeouts as? [String: Any] else {
                    throw ConfigurationError(key: "models.\(name).timeouts", problem: "expected a mapping")
                }
                for key in timeoutMapping.keys where !timeoutKeys.contains(key) {
                    throw ConfigurationError(key: "models.\(name).timeouts.\(key)", problem: "unknown key; expected one of \(timeoutKeys.sorted().joined(separator: ", "))")
                }
            }
        }
    }
}

/// Typed reads that fail with the key's name instead of silently falling back to a default.
struct Values {
    let reader: ConfigReader

    private func key(_ dotted: String) -> ConfigKey {
        // Model names may contain dots (gpt-4.1): only split the fixed structure.
        let parts = dotted.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.first == "models", parts.count > 2 {
            let tail = Array(parts.suffix(parts[parts.count - 2] == "timeouts" ? 2 : 1))
            let name = parts.dropFirst().dropLast(tail.count).joined(separator: ".")
            return ConfigKey(["models", name] + tail)
        }
        return ConfigKey(parts)
    }

    func string(_ dotted: String) throws -> String? {
        if let value = reader.string(forKey: key(dotted)) { return value }
        if let array = reader.stringArray(forKey: key(dotted)) {
            throw ConfigurationError(key: dotted, problem: "expected a single value, got a list \(array)")
        }
        return nil
    }

    func stringArray(_ dotted: String) throws -> [String]? {
        if let array = reader.stringArray(forKey: key(dotted)) { return array }
        if let single = reader.string(forKey: key(dotted)) {
            throw ConfigurationError(key: dotted, problem: "expected a list, got `\(single)`")
        }
        return nil
    }

    /// A list, or (from the environment) a comma-separated string.
    func list(_ dotted: String) throws -> [String]? {
        if let array = reader.stringArray(forKey: key(dotted)) {
            return array.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        return reader.string(forKey: key(dotted)).map { text in
            text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }

    func bool(_ dotted: String) throws -> Bool? {
        guard let text = try string(dotted) else { return nil }
        guard let value = Bool(text.lowercased()) else {
            throw ConfigurationError(key: dotted, problem: "expected true or false, got `\(text)`")
        }
        return value
    }

    func choice<Choice: RawRepresentable & CaseIterable>(_ dotted: String, _ type: Choice.Type) throws -> Choice? where Choice.RawValue == String {
        guard let text = try string(dotted) else { return nil }
        guard let value = Choice(rawValue: text.lowercased()) else {
            throw ConfigurationError(key: dotted, problem: "expected one of \(Choice.allCases.map(\.rawValue).joined(separator: ", ")), got `\(text)`")
        }
        return value
    }

    func int(_ dotted: String, range: ClosedRange<Int>) throws -> Int? {
        guard let text = try string(dotted) else { return nil }
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigurationError(key: dotted, problem: "expected an integer, got `\(text)`")
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: dotted, problem: "\(value) is out of range \(range.lowerBound)…\(range.upperBound)")
        }
        return value
    }

    func double(_ dotted: String, range: ClosedRange<Double>) throws -> Double? {
        guard let text = try string(dotted) else { return nil }
        guard let value = Double(text.trimmingCharacters(in: .whitespaces)) else {
            throw ConfigurationError(key: dotted, problem: "expected a number, got `\(text)`")
        }
        guard range.contains(value) else {
            throw ConfigurationError(key: dotted, problem: "\(value) is out of range")
        }
        return value
    }
}
