import Foundation
import ChorusCore
import ChorusProviders
import ChorusRuntime
import Foundation
import Testing

@Suite struct ConfigurationLoaderTests {
    private let valid = """
        http:
          port: 9000
        data_dir: /var/lib/chorus
        models:
          gpt-4.1:
            provider: openai
            base_url: https://api.openai.com/v1
            api_key_env: OPENAI_API_KEY
            timeouts: {first_token: 300, total: 1800}
          local:
            provider: local
            model_path: models/m.gguf
            extra_args: [--flash-attn, "on"]
        """

    @Test func readsModelsTimeoutsAndDefaults() throws {
        let config = try ConfigurationLoader.parse(yaml: valid, baseDirectory: "/etc/chorus")
        #expect(config.http.port == 9000)
        #expect(config.http.backlog == 4096, "the accept queue's default")
        #expect(config.http.idleTimeoutSeconds == 60)
        #expect(config.storage.sqlitePath == "/var/lib/chorus/chorus.sqlite")
        #expect(config.storage.postgresPreparedStatements == 256)
        #expect(config.models.map(\.name) == ["gpt-4.1", "local"])
        let gpt = config.models[0]
        #expect(gpt.upstreamModel == "gpt-4.1")
        #expect(gpt.timeouts.firstToken == 300)
        #expect(gpt.timeouts.total == 1800)
        #expect(gpt.timeouts.betweenTokens == ModelTimeouts().betweenTokens)
        let local = try #require(config.models[1].local)
        #expect(local.modelPath == "/etc/chorus/models/m.gguf", "relative to the configuration file")
        #expect(local.extraArguments == ["--flash-attn", "on"])
        #expect(local.logPath == "/var/lib/chorus/logs/local-local.log")
    }

    @Test func skillSpaceAnswersWithTheLocalModelUnlessTold() throws {
        #expect(try ConfigurationLoader.parse(yaml: valid).skillSpace.model == "local")
        let renamed = valid.replacingOccurrences(of: "  local:\n", with: "  small:\n")
        #expect(try ConfigurationLoader.parse(yaml: renamed).skillSpace.model == "small", "the first local model")
        let cloudOnly = "models:\n  m:\n    provider: openai\n    base_url: http://x\n"
        #expect(try ConfigurationLoader.parse(yaml: cloudOnly).skillSpace.model == nil)
        #expect(try ConfigurationLoader.parse(yaml: valid + "\nskillspace:\n  model: gpt-4.1\n").skillSpace.model == "gpt-4.1")
        #expect(try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_SKILLSPACE_MODEL": "gpt-4.1"]).skillSpace.model == "gpt-4.1")
    }

    @Test func environmentAndFlagsOverrideTheFile() throws {
        let fromEnvironment = try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_HTTP_PORT": "7000", "CHORUS_LOGGING_LEVEL": "debug"])
        #expect(fromEnvironment.http.port == 7000)
        #expect(fromEnvironment.logging.level == "debug")
        #expect(try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_HTTP_BACKLOG": "1024"]).http.backlog == 1024)
        #expect(try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_HTTP_IDLE_TIMEOUT_SECONDS": "2.5"]).http.idleTimeoutSeconds == 2.5)
        #expect(try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_STORAGE_POSTGRES_PREPARED_STATEMENTS": "0"]).storage.postgresPreparedStatements == 0)
        let fromFlags = try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_HTTP_PORT": "7000"], overrides: ["http.port": "6000"])
        #expect(fromFlags.http.port == 6000)
    }

    /// Traces are off unless a collector is named, in the file or the environment.
    @Test func tracingIsOffUntilAnEndpointIsSet() throws {
        #expect(try ConfigurationLoader.parse(yaml: valid).tracing.otlpEndpoint == nil)
        #expect(try ConfigurationLoader.parse(yaml: valid).tracing.enabled == false)
        let fromFile = try ConfigurationLoader.parse(yaml: valid + "\ntracing:\n  otlp_endpoint: http://collector:4318\n")
        #expect(fromFile.tracing.otlpEndpoint == "http://collector:4318")
        let fromEnvironment = try ConfigurationLoader.parse(yaml: valid, environment: ["CHORUS_TRACING_OTLP_ENDPOINT": "https://otel.example:4318"])
        #expect(fromEnvironment.tracing.otlpEndpoint == "https://otel.example:4318")
        #expect(fromEnvironment.tracing.enabled)
    }

    @Test(arguments: [
        ("models:\n  m:\n    provider: bogus\n    base_url: http://x", "models.m.provider"),
        ("models:\n  m:\n    provider: openai", "models.m.base_url"),
        ("models:\n  m:\n    provider: openai\n    base_url: not a url", "models.m.base_url"),
        ("models:\n  m:\n    provider: local", "models.m.model_path"),
        ("models:\n  m:\n    provider: openai\n    base_url: http://x\n    timeouts: {first_tokn: 3}", "models.m.timeouts.first_tokn"),
        ("models:\n  m:\n    provider: openai\n    base_url: http://x\n    timeouts: {total: soon}", "models.m.timeouts.total"),
        ("http:\n  port: eighty", "http.port"),
        ("http:\n  prot: 80", "http.prot"),
        ("http:\n  backlog: 0", "http.backlog"),
        ("http:\n  idle_timeout_seconds: 0", "http.idle_timeout_seconds"),
        ("storage:\n  postgres_prepared_statements: -1", "storage.postgres_prepared_statements"),
        ("htp:\n  port: 80", "htp"),
        ("conversations:\n  on_disconnect: shrug", "conversations.on_disconnect"),
        ("logging:\n  level: loud", "logging.level"),
        ("tracing:\n  otlp_endpoint: collector:4318", "tracing.otlp_endpoint"),
        ("tracing:\n  endpoint: http://collector:4318", "tracing.endpoint"),
        ("skillspace:\n  model: nowhere\nmodels:\n  m:\n    provider: openai\n    base_url: http://x", "skillspace.model"),
        ("tasks:\n  commands:\n    x: {argv: [echo, \"{y}\"]}", "tasks.commands.x.argv[1]"),
        ("tasks:\n  commands:\n    x: {argv: []}", "tasks.commands.x.argv"),
        ("tasks:\n  commands:\n    x: {argv: [echo], on_worker_loss: maybe}", "tasks.commands.x.on_worker_loss"),
        ("tasks:\n  commands:\n    x: {argv: [echo], shell: true}", "tasks.commands.x.shell"),
        ("tasks:\n  commands:\n    x: {argv: [echo], params: {n: {type: float}}}", "tasks.commands.x.params.n.type"),
        ("tasks:\n  commands:\n    X Y: {argv: [echo]}", "tasks.commands.X Y"),
    ])
    func aBadConfigurationNamesTheKey(yaml: String, key: String) {
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml: yaml) }
        do {
            _ = try ConfigurationLoader.parse(yaml: yaml)
        } catch let error as ConfigurationError {
            #expect(error.key == key)
            #expect(error.description.contains(key))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// The issue's own declaration, as an operator writes it.
    @Test func readsDeclaredCommands() throws {
        let config = try ConfigurationLoader.parse(yaml: """
            tasks:
              artifact_max_bytes: 1000
              commands:
                fine-tune:
                  argv: [python3, examples/fine_tune.py, --epochs, "{epochs}", --data, "{dataset}"]
                  params: {epochs: {type: integer, minimum: 1, maximum: 50}, dataset: {type: string, pattern: "^[a-z0-9_-]+$"}}
                  timeout_seconds: 3600
                  max_concurrency: 1
                  on_worker_loss: retry
            """)
        let command = try #require(config.tasks.commands["fine-tune"])
        #expect(command.argv == ["python3", "examples/fine_tune.py", "--epochs", "{epochs}", "--data", "{dataset}"])
        #expect(command.params["epochs"] == CommandParameter(kind: .integer, minimum: 1, maximum: 50))
        #expect(command.params["dataset"] == CommandParameter(kind: .string, pattern: "^[a-z0-9_-]+$"))
        #expect(command.timeoutSeconds == 3600)
        #expect(command.maxConcurrency == 1)
        #expect(command.onWorkerLoss == .retry)
        #expect(config.tasks.artifactMaxBytes == 1000)
        #expect(try ConfigurationLoader.parse(yaml: "").tasks.commands.isEmpty)
    }

    /// The example in examples/ stays a valid configuration.
    @Test func theExampleJobsConfigurationLoads() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let config = try await ConfigurationLoader.load(path: root.appendingPathComponent("examples/chorus-jobs.yaml").path, environment: [:])
        let command = try #require(config.tasks.commands["fine-tune"])
        #expect(command.arguments(for: try command.validate(["epochs": .int(3), "dataset": .string("demo")]))
            == ["python3", "examples/fine_tune.py", "--epochs", "3", "--data", "demo"])
    }

    @Test func aBadEnvironmentValueNamesTheKey() {
        #expect(throws: ConfigurationError(key: "http.port", problem: "expected an integer, got `x`")) {
            try ConfigurationLoader.parse(yaml: "", environment: ["CHORUS_HTTP_PORT": "x"])
        }
    }

    /// Lists from the file or from one comma-separated variable; a list where one value belongs,
    /// or one value where a list belongs, names the key; `data_dir` from `CHORUS_DATA_DIR`.
    @Test func listsAndSingleValuesFromFileAndEnvironment() throws {
        let fromFile = try ConfigurationLoader.parse(yaml: "http:\n  cors_origins: [https://a.example, https://b.example]\n")
        #expect(fromFile.http.corsOrigins == ["https://a.example", "https://b.example"])
        let fromEnvironment = try ConfigurationLoader.parse(yaml: "", environment: ["CHORUS_HTTP_CORS_ORIGINS": "https://a.example, https://b.example", "CHORUS_DATA_DIR": "/srv/chorus"])
        #expect(fromEnvironment.http.corsOrigins == ["https://a.example", "https://b.example"])
        #expect(fromEnvironment.dataDirectory == "/srv/chorus")
        #expect(throws: ConfigurationError.self) { try ConfigurationLoader.parse(yaml: "http:\n  port: [1, 2]\n") }
        #expect(throws: ConfigurationError(key: "http.idle_timeout_seconds", problem: "expected a number, got `soon`")) {
            try ConfigurationLoader.parse(yaml: "http:\n  idle_timeout_seconds: soon\n")
        }
    }
}
