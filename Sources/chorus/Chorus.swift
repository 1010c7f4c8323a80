import ArgumentParser
import ChorusCore
import ChorusApp
import ChorusProviders
import ChorusRuntime
import ChorusStore
import Foundation
import ServiceLifecycle
import UnixSignals
import Hummingbird
import Logging
import NIOCore
import NIOPosix

@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "A self-hosted AI chat and task backend: one streaming, OpenAI-compatible API to every model.",
        subcommands: [Serve.self, Gateway.self, Worker.self, Migrate.self, Models.self, UserCommand.self])

    /// Runs Swift Concurrency's tasks on NIO's event loops, so that a request's awaits on I/O do
    /// not hop between two thread pools (nothing in Chorus blocks a thread: SQLite and bcrypt run
    /// on NIO's thread pool).
    static func main() async {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        await main(nil)
    }
}

/// Options shared by the commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The YAML configuration file (default: chorus.yaml if present, else the built-in local model).")
    var config: String?

    /// The configuration, with `--host`/`--port` over the file and the environment.
    func load(host: String?, port: Int?) async throws -> ChorusConfiguration {
        var overrides: [String: String] = [:]
        if let host { overrides["http.host"] = host }
        if let port { overrides["http.port"] = String(port) }
        return try await load(overrides: overrides)
    }

    func load(overrides: [String: String] = [:]) async throws -> ChorusConfiguration {
        do {
            return try await ConfigurationLoader.load(path: config, overrides: overrides)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }
}

/// Where an HTTP process listens, over the configuration.
struct ListenOptions: ParsableArguments {
    @Option(help: "The address to listen on (overrides http.host).") var host: String?
    @Option(help: "The port to listen on; 0 picks a free one (overrides http.port).") var port: Int?

    /// Prints one line on stdout once listening, for people and for scripts that started us on port 0.
    static func announce(_ name: String) -> @Sendable (String, Int) async -> Void {
        { host, port in FileHandle.standardOutput.write(Data("\(name) listening on http://\(host):\(port)\n".utf8)) }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run Chorus embedded: one process, SQLite, the local model.")

    @OptionGroup var options: ConfigOptions
    @OptionGroup var listen: ListenOptions

    func run() async throws {
        let configuration = try await options.load(host: listen.host, port: listen.port)
        bootstrapLogging(configuration.logging)
        let logger = Logger(label: "chorus")
        let app = try await buildServeApplication(configuration: configuration, logger: logger, onListening: ListenOptions.announce("chorus"))
        try await runUntilSignalled(app, logger: logger)
    }
}

struct Gateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a stateless HTTP gateway over PostgreSQL and Redis (any number).")

    @OptionGroup var options: ConfigOptions
    @OptionGroup var listen: ListenOptions

    func run() async throws {
        let configuration = try await options.load(host: listen.host, port: listen.port)
        bootstrapLogging(configuration.logging)
        let logger = Logger(label: "chorus.gateway")
        let app = try buildGatewayApplication(configuration: configuration, logger: logger, onListening: ListenOptions.announce("chorus gateway"))
        try await runUntilSignalled(app, logger: logger)
    }
}

struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a worker that consumes the queues of some models (any number).")

    @OptionGroup var options: ConfigOptions
    @Option(help: "Comma-separated models whose queues this worker serves (default: all).") var models: String?
    @Option(help: "A stable consumer name: a restarted worker reclaims its own unfinished entries (default: the host name).")
    var name: String?

    func run() async throws {
        let configuration = try await options.load()
        bootstrapLogging(configuration.logging)
        let logger = Logger(label: "chorus.worker")
        let requested = (models ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let services: [any Service]
        do {
            services = try buildWorker(configuration: configuration, name: name ?? ProcessInfo.processInfo.hostName, models: requested, logger: logger)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
        FileHandle.standardOutput.write(Data("chorus worker \(name ?? ProcessInfo.processInfo.hostName) started\n".utf8))
        let group = ServiceGroup(configuration: .init(services: services.map { .init(service: $0) }, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations (PostgreSQL when storage.postgres_url is set, else the SQLite file).")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let configuration = try await options.load()
        bootstrapLogging(configuration.logging)
        let logger = Logger(label: "chorus.migrate")
        try await withDatabase(configuration, logger: logger) { backend in
            let applied = try await Migrator(backend: backend, logger: logger).migrate()
            print("migrations applied: \(applied.isEmpty ? "none (up to date)" : applied.map(String.init).joined(separator: ", "))")
        }
    }
}

/// Runs `service` until SIGTERM or SIGINT, then stops it gracefully (a `ChorusProcess`: in phases).
func runUntilSignalled(_ service: some Service, logger: Logger) async throws {
    try await ServiceGroup(configuration: .init(services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
}

/// Opens the configured database (PostgreSQL when storage.postgres_url is set, else the SQLite
/// file) for one command, and closes it after.
func withDatabase(_ configuration: ChorusConfiguration, logger: Logger, _ body: @Sendable (any SQLBackend) async throws -> Void) async throws {
    if let url = configuration.storage.postgresURL {
        let backend = try PostgresBackend(url: url, logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await backend.run() }
            defer { group.cancelAll() }
            try await body(backend)
            await backend.close()
        }
    } else {
        try FileManager.default.createDirectory(atPath: (configuration.storage.sqlitePath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let backend = try await SQLiteBackend.open(path: configuration.storage.sqlitePath, logger: logger)
        do {
            try await body(backend)
        } catch {
            try? await backend.close()
            throw error
        }
        try await backend.close()
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage user accounts.", subcommands: [Create.self, Key.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user. The password is read from standard input when it is not a terminal; otherwise one is generated and printed once.")

        @OptionGroup var options: ConfigOptions
        @Option(help: "The user's email (their login).") var email: String
        @Option(help: "A display name.") var name: String?
        @Flag(help: "Give the user the admin role.") var admin = false
        @Option(help: "The user's role (default: auth.default_role).") var role: String?

        func run() async throws {
            let configuration = try await options.load()
            bootstrapLogging(configuration.logging)
            let logger = Logger(label: "chorus.user")
            var generated = false
            var password: String
            if isatty(STDIN_FILENO) == 0, let line = readLine(strippingNewline: true), !line.isEmpty {
                password = line
            } else {
                password = Secrets.random(20)
                generated = true
            }
            let role = admin ? BuiltinRole.admin : (role ?? configuration.auth.defaultRole)
            let email = self.email, name = self.name
            let given = password
            try await withDatabase(configuration, logger: logger) { backend in
                try await Migrator(backend: backend, logger: logger).migrate()
                let accounts = AuthService(store: SQLAuthStore(backend: backend), configuration: configuration.auth, limits: configuration.limits, limiter: InMemoryRateLimiter(), logger: logger)
                try await accounts.store.ensureBuiltinRoles(now: nowMilliseconds())
                do {
                    let user = try await accounts.createUser(email: email, password: given, name: name, role: role)
                    print("created user \(user.id) \(user.email) with role \(user.role)")
                } catch let error as ChorusError {
                    throw ValidationError(error.message)
                }
            }
            if generated { print("password: \(password) (shown once)") }
            password = ""
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key for a user and print it once (for scripts and first setup).")

        @OptionGroup var options: ConfigOptions
        @Option(help: "The user's email.") var email: String
        @Option(help: "A name for the key.") var name = "cli"
        @Option(help: "Comma-separated permissions narrowing the key (default: all of the user's).") var scopes: String?

        func run() async throws {
            let configuration = try await options.load()
            bootstrapLogging(configuration.logging)
            let logger = Logger(label: "chorus.user")
            let (email, name) = (self.email, self.name)
            var scopes: Set<Permission>?
            if let list = self.scopes {
                switch Permission.parse(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }) {
                case .success(let parsed): scopes = parsed
                case .failure(let unknown): throw ValidationError("unknown permission `\(unknown.name)`")
                }
            }
            let chosen = scopes
            try await withDatabase(configuration, logger: logger) { backend in
                try await Migrator(backend: backend, logger: logger).migrate()
                let accounts = AuthService(store: SQLAuthStore(backend: backend), configuration: configuration.auth, limits: configuration.limits, limiter: InMemoryRateLimiter(), logger: logger)
                guard let user = try await accounts.store.user(email: try AuthService.normalize(email: email)),
                      let role = try await accounts.store.role(named: user.role) else {
                    throw ValidationError("no user with the email \(email)")
                }
                do {
                    let (_, secret) = try await accounts.createAPIKey(userID: user.id, rolePermissions: role.permissions, name: name, scopes: chosen, expiresInSeconds: nil, tokenBudget: nil)
                    print(secret)
                } catch let error as ChorusError {
                    throw ValidationError(error.message)
                }
            }
        }
    }
}

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the configured models.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let configuration = try await options.load()
        for model in configuration.models {
            let target = model.local.map { "gguf=\($0.modelPath)" } ?? "base_url=\(model.baseURL ?? "")"
            print("\(model.name)\tprovider=\(model.provider.rawValue)\tupstream_model=\(model.upstreamModel)\t\(target)")
        }
    }
}

/// Logging is bootstrapped once, here in the executable, never in library code.
func bootstrapLogging(_ settings: ChorusConfiguration.Logging) {
    let level = Logger.Level(rawValue: settings.level) ?? .info
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = settings.format == "json" ? JSONLogHandler(label: label) : TextLogHandler(label: label)
        handler.logLevel = level
        return handler
    }
}
