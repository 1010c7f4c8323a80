import ChorusStore
import Foundation
import Logging
import SQLKit
import Testing

/// A real PostgreSQL for a test suite, started by the first test that asks for it.
///
/// With `CHORUS_TEST_POSTGRES_URL` set (a role that may `CREATE DATABASE`), that server is used.
/// Otherwise the first test starts a private one: Debian's `postgresql` is installed if `initdb` is
/// missing, `initdb` runs as the `postgres` OS user into a temporary folder, and `pg_ctl start`
/// listens on 127.0.0.1 at a free port with SCRAM passwords, as production would. Tests connect as
/// `chorus`, a role that is not a superuser and owns each test's database.
///
/// Every test gets its own database (`withFreshDatabase`), so the suite runs in parallel. The
/// `.postgresServer` suite trait stops the server and deletes its folder when the suite ends; a
/// watchdog process does the same if the test process dies first. If the server cannot be started,
/// every test that needs it fails with the reason.
actor PostgresTestServer {
    @TaskLocal static var current: PostgresTestServer?

    /// The server of the running suite; fails when the suite lacks the `.postgresServer` trait.
    static func required() throws -> PostgresTestServer {
        guard let current else {
            throw PostgresTestServerError("this test needs PostgreSQL: add the .postgresServer trait to its suite")
        }
        return current
    }

    private var starting: Task<Cluster, any Error>?
    private let logger = Logger(label: "postgres-test-server")

    /// Creates a database for `body` (owned by the role the configuration connects as) and drops it afterwards.
    nonisolated func withFreshDatabase(_ body: (PostgresBackend.Configuration) async throws -> Void) async throws {
        let cluster = try await cluster()
        let name = "chorus_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await cluster.administer(logger: logger, "create database \(name)") { db in
            try await db.raw("CREATE DATABASE \(ident: name) OWNER \(ident: cluster.app.username)").run()
        }
        var configuration = cluster.app
        configuration.database = name
        do {
            try await body(configuration)
        } catch {
            try? await cluster.drop(database: name, logger: logger)
            throw error
        }
        try await cluster.drop(database: name, logger: logger)
    }

    /// Stops the server if this suite started one.
    func stop() async {
        guard let starting, let local = try? await starting.value.local else { return }
        await local.stop()
    }

    private func cluster() async throws -> Cluster {
        if let starting { return try await starting.value }
        let logger = self.logger
        let task = Task {
            if let url = ProcessInfo.processInfo.environment["CHORUS_TEST_POSTGRES_URL"], !url.isEmpty {
                let cluster = try Cluster(url: url)
                try await cluster.administer(logger: logger, "connect to CHORUS_TEST_POSTGRES_URL") { db in
                    try await db.raw("SELECT 1").run()
                }
                return cluster
            }
            return try await LocalServer.start(logger: logger)
        }
        starting = task
        return try await task.value
    }
}

extension PostgresTestServer {
    /// Where tests create their databases, and whom they connect as.
    struct Cluster: Sendable {
        /// May create and drop databases; connects to a database that always exists.
        var admin: PostgresBackend.Configuration
        /// The tests' role, with no database chosen.
        var app: PostgresBackend.Configuration
        /// The server this process started, if any.
        var local: LocalServer?

        init(admin: PostgresBackend.Configuration, app: PostgresBackend.Configuration, local: LocalServer?) {
            self.admin = admin
            self.app = app
            self.local = local
        }

        /// An existing server: the URL's role creates the databases and connects to them.
        init(url: String) throws {
            admin = try PostgresBackend.Configuration(url: url, maximumConnections: 1)
            app = admin
            app.database = nil
            local = nil
        }

        /// Runs `body` on an admin connection; a server that does not answer fails instead of hanging.
        func administer(logger: Logger, _ what: String, _ body: @escaping @Sendable (any SQLDatabase) async throws -> Void) async throws {
            let admin = self.admin
            try await withTimeout(seconds: 30, what) {
                try await PostgresBackend.withRunning(admin, logger: logger) { backend in
                    try await body(backend.database)
                }
            }
        }

        func drop(database name: String, logger: Logger) async throws {
            try await administer(logger: logger, "drop database \(name)") { db in
                try await db.raw("DROP DATABASE IF EXISTS \(ident: name) WITH (FORCE)").run()
            }
        }
    }

    /// A PostgreSQL server in a temporary folder, run by this test process.
    struct LocalServer: Sendable {
        let folder: String
        let binDirectory: String

        var dataDirectory: String { folder + "/data" }

        static func start(logger: Logger) async throws -> Cluster {
            let binDirectory = try await installedBinDirectory()
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-pg-\(UUID().uuidString.prefix(8))").path
            try FileManager.default.createDirectory(atPath: folder + "/sockets", withIntermediateDirectories: true)
            let server = LocalServer(folder: folder, binDirectory: binDirectory)
            do {
                // From here on, even a crash of this process stops the server and removes the folder.
                try await ChildProcess.startWatchdog(stopping: folder, binDirectory: binDirectory)
                let adminPassword = randomPassword()
                let appPassword = randomPassword()
                try adminPassword.write(toFile: folder + "/pwfile", atomically: true, encoding: .utf8)
                if ChildProcess.isRoot {
                    try await ChildProcess.run("/bin/chown", ["-R", "postgres:postgres", folder])
                }
                try await server.postgres("initdb", [
                    "-D", server.dataDirectory, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                    "--pwfile=\(folder)/pwfile", "-E", "UTF8", "--no-locale", "--no-sync",
                ])
                try? FileManager.default.removeItem(atPath: folder + "/pwfile")
                let port = try await server.startOnFreePort()
                let admin = PostgresBackend.Configuration(
                    host: "127.0.0.1", port: port, username: "postgres", password: adminPassword, database: "postgres",
                    tls: .disable, maximumConnections: 1)
                let app = PostgresBackend.Configuration(
                    host: "127.0.0.1", port: port, username: "chorus", password: appPassword, database: nil, tls: .disable)
                let cluster = Cluster(admin: admin, app: app, local: server)
                try await cluster.administer(logger: logger, "create role chorus") { db in
                    // A utility statement takes no bound parameters; the password is hex.
                    try await db.raw("CREATE ROLE chorus LOGIN PASSWORD '\(unsafeRaw: appPassword)'").run()
                }
                logger.info("PostgreSQL started", metadata: ["port": "\(port)", "folder": "\(folder)"])
                return cluster
            } catch {
                await server.stop()
                throw error
            }
        }

        /// Stops the server (fast shutdown: sessions are ended) and deletes its folder, which ends the watchdog.
        func stop() async {
            if FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid") {
                try? await postgres("pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"])
            }
            try? FileManager.default.removeItem(atPath: folder)
        }

        /// Starts on a random port below Linux's ephemeral range, trying another if that one is taken.
        private func startOnFreePort() async throws -> Int {
            var lastError: (any Error)?
            for _ in 1...4 {
                let port = Int.random(in: 20_000..<32_000)
                do {
                    try await postgres("pg_ctl", [
                        "-D", dataDirectory, "-l", folder + "/server.log", "-w", "-t", "60",
                        "-o", "-p \(port) -k \(folder)/sockets -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
                        "start",
                    ])
                    return port
                } catch {
                    lastError = error
                }
            }
            let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
            throw PostgresTestServerError("pg_ctl start failed: \(lastError.map { "\($0)" } ?? "")\nserver.log:\n\(log.suffix(2000))")
        }

        /// Runs a PostgreSQL program as the `postgres` OS user (which `initdb` requires when this process is root).
        private func postgres(_ program: String, _ arguments: [String]) async throws {
            let executable = binDirectory + "/" + program
            if ChildProcess.isRoot {
                try await ChildProcess.run("/usr/sbin/runuser", ["-u", "postgres", "--", executable] + arguments)
            } else {
                try await ChildProcess.run(executable, arguments)
            }
        }

        /// PostgreSQL 15's programs, installing Debian's `postgresql` package when none is installed.
        private static func installedBinDirectory() async throws -> String {
            if let found = findBinDirectory() { return found }
            guard ChildProcess.isRoot, FileManager.default.isExecutableFile(atPath: "/usr/bin/apt-get") else {
                throw PostgresTestServerError("PostgreSQL is not installed (no initdb); install it or set CHORUS_TEST_POSTGRES_URL")
            }
            let install = ["-o", "DPkg::Lock::Timeout=120", "install", "-y", "--no-install-recommends", "postgresql"]
            let environment = ["DEBIAN_FRONTEND": "noninteractive"]
            do {
                try await ChildProcess.run("/usr/bin/apt-get", install, environment: environment)
            } catch {
                // The package lists may be missing or stale.
                try await ChildProcess.run("/usr/bin/apt-get", ["-o", "DPkg::Lock::Timeout=120", "update"], environment: environment)
                try await ChildProcess.run("/usr/bin/apt-get", install, environment: environment)
            }
            guard let found = findBinDirectory() else {
                throw PostgresTestServerError("installed postgresql, but found no initdb under /usr/lib/postgresql")
            }
            return found
        }

        private static func findBinDirectory() -> String? {
            let root = "/usr/lib/postgresql"
            let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
                .sorted { (Int($0) ?? 0, $0) > (Int($1) ?? 0, $1) }
            let candidates = ["\(root)/15/bin"] + versions.map { "\(root)/\($0)/bin" }
                + (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            return candidates.first { directory in
                ["initdb", "pg_ctl"].allSatisfy { FileManager.default.isExecutableFile(atPath: directory + "/" + $0) }
            }
        }

        private static func randomPassword() -> String {
            (0..<2).map { _ in UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }.joined()
        }
    }
}

/// Runs programs with `posix_spawn` and waits for them on a thread outside Swift's cooperative pool.
///
/// Not Foundation's `Process`: on Linux it learns that a child has ended when a socket inherited by
/// the child closes, so a program that leaves a daemon behind (`pg_ctl start`) never "ends". Here
/// the child gets only stdin (/dev/null) and stdout/stderr (a log file); every other descriptor is
/// closed, and signal dispositions and mask are reset.
enum ChildProcess {
    static var isRoot: Bool { getuid() == 0 }

    /// Runs to completion; throws with the combined output when the exit status is not 0.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) async throws {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-subprocess-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let pid = try spawn(executable, arguments, environment: environment, outputPath: outputPath)
        let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
            Thread.detachNewThread {
                var status: Int32 = 0
                while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
                continuation.resume(returning: status)
            }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import.
        let exitCode = status & 0x7f == 0 ? (status >> 8) & 0xff : -1
        guard exitCode == 0 else {
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            let how = exitCode == -1 ? "was killed by signal \(status & 0x7f)" : "exited with \(exitCode)"
            throw PostgresTestServerError("\(([executable] + arguments).joined(separator: " ")) \(how):\n\(text.suffix(2000))")
        }
    }

    private static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String], outputPath: String
    ) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // This process's other descriptors (glibc ignores one closed meanwhile).
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap({ Int32($0) }) ?? [] where fd > 2 {
            posix_spawn_file_actions_addclose(&actions, fd)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let variables = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }

        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else {
            throw PostgresTestServerError("cannot start \(executable): \(String(cString: strerror(result)))")
        }
        return pid
    }

    /// Starts a detached shell that, once this process has ended, stops the server and removes its
    /// folder. It ends by itself when the folder is gone, so a clean `stop()` needs no signal.
    static func startWatchdog(stopping folder: String, binDirectory: String) async throws {
        let asPostgres = isRoot ? "/usr/sbin/runuser -u postgres -- " : ""
        let script = """
            (
            while kill -0 \(getpid()) 2>/dev/null && [ -d '\(folder)' ]; do sleep 1; done
            if [ -f '\(folder)/data/postmaster.pid' ]; then \(asPostgres)'\(binDirectory)/pg_ctl' -D '\(folder)/data' -m immediate stop; fi
            rm -rf '\(folder)'
            ) </dev/null >/dev/null 2>&1 &
            """
        try await run("/bin/sh", ["-c", script])
    }
}

struct PostgresTestServerError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body`, failing with `what` if it takes longer than `seconds`.
func withTimeout<T: Sendable>(seconds: Int, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw PostgresTestServerError("\(what): no answer within \(seconds) s (is the server up, and are the credentials right?)")
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

extension PostgresBackend {
    /// Runs the pool while `body` runs and closes it afterwards: a service group of one, for tests.
    static func withRunning<T: Sendable>(
        _ configuration: Configuration, logger: Logger, _ body: (PostgresBackend) async throws -> T
    ) async throws -> T {
        let backend = PostgresBackend(configuration: configuration, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await backend.run() }
            do {
                let result = try await body(backend)
                await backend.close()
                return result
            } catch {
                await backend.close()
                throw error
            }
        }
    }
}

/// Gives the suite a `PostgresTestServer`, started on first use and stopped when the suite ends.
struct PostgresServerTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = PostgresTestServer()
        do {
            try await PostgresTestServer.$current.withValue(server) { try await function() }
        } catch {
            await server.stop()
            throw error
        }
        await server.stop()
    }
}

extension Trait where Self == PostgresServerTrait {
    /// A real PostgreSQL for the suite's tests; see `PostgresTestServer`.
    static var postgresServer: Self { Self() }
}
