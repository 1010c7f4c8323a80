import ChorusRedis
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway `redis-server` for one test: its own port, its own temporary directory, no persistence.
/// Set `REDIS_SERVER` to use a binary that is not on the usual paths.
final class RedisServerProcess {
    private(set) var port: Int
    let directory: URL
    private let extraArguments: [String]
    private var process: Process?

    /// Starts a server on a free port and waits until it answers `PING`.
    init(extraArguments: [String] = []) async throws {
        self.port = try Self.freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-redis-\(UUID().uuidString)")
        self.extraArguments = extraArguments
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        // The free port can be taken by another test's server before this one binds it: then it
        // exits at once, and it is started again on another port.
        var attempts = 0
        while true {
            do {
                try await self.start()
                return
            } catch where attempts < 4 && self.process?.isRunning == false {
                attempts += 1
                self.process = nil
                self.port = try Self.freePort()
            }
        }
    }

    var configuration: RedisConfiguration {
        RedisConfiguration(host: "127.0.0.1", port: self.port)
    }

    var isRunning: Bool { self.process?.isRunning ?? false }

    func start() async throws {
        precondition(self.process == nil, "already running")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.serverExecutable())
        process.arguments = [
            "--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--dir", self.directory.path, "--logfile", "redis.log",
        ] + self.extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try await self.waitUntilReady()
    }

    enum StopMode: Sendable {
        /// `SHUTDOWN NOSAVE`: the server closes its connections and exits.
        case shutdown
        /// SIGKILL: the process dies on the spot, as in a crash.
        case kill
    }

    /// Stops the server and waits for it to exit (SIGKILL if a shutdown lingers).
    ///
    /// Not SIGTERM: a child spawned from a Dispatch thread inherits its blocked signal mask, and redis-server then ignores SIGTERM.
    func stop(_ mode: StopMode = .shutdown) async {
        guard let process = self.process else { return }
        self.process = nil
        switch mode {
        case .shutdown:
            if let connection = try? await RedisConnection.connect(configuration: self.adminConfiguration) {
                _ = try? await connection.send(["SHUTDOWN", "NOSAVE"], timeout: .seconds(2))
                await connection.close()
            }
        case .kill:
            kill(process.processIdentifier, SIGKILL)
        }
        for _ in 0..<100 where process.isRunning {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    func restart() async throws {
        await self.stop()
        try await self.start()
    }

    /// Stops the server and removes its directory.
    func dispose() async {
        await self.stop()
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// Settings for the helper's own connections: RESP2, short connect timeout, the server's password.
    private var adminConfiguration: RedisConfiguration {
        var configuration = self.configuration
        configuration.connectTimeout = .milliseconds(500)
        configuration.protocolVersion = .resp2
        if let index = self.extraArguments.firstIndex(of: "--requirepass"), index + 1 < self.extraArguments.count {
            configuration.password = self.extraArguments[index + 1]
        }
        return configuration
    }

    private func waitUntilReady() async throws {
        let configuration = self.adminConfiguration
        let deadline = ContinuousClock.now + .seconds(10)
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            guard self.process?.isRunning == true else {
                let log = (try? String(contentsOf: self.directory.appendingPathComponent("redis.log"), encoding: .utf8)) ?? ""
                throw ServerError("redis-server exited during start-up. Log:\n\(log)")
            }
            do {
                let connection = try await RedisConnection.connect(configuration: configuration)
                let pong = try? await connection.ping()
                await connection.close()
                if pong == "PONG" { return }
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ServerError("redis-server on port \(self.port) did not answer PING within 10 s: \(String(describing: lastError))")
    }

    private static func serverExecutable() throws -> String {
        let candidates = [ProcessInfo.processInfo.environment["REDIS_SERVER"], "/usr/bin/redis-server", "/usr/local/bin/redis-server", "/opt/homebrew/bin/redis-server"]
        for case let path? in candidates where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        throw ServerError("redis-server not found; install it (apt-get install -y redis-server) or set REDIS_SERVER")
    }

    /// Asks the kernel for a free TCP port on 127.0.0.1.
    private static func freePort() throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw ServerError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw ServerError("bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ServerError("getsockname() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    struct ServerError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

/// Runs `body` with a fresh server, disposing of it afterwards even when `body` throws.
func withRedisServer<T>(
    extraArguments: [String] = [],
    _ body: (RedisServerProcess) async throws -> T
) async throws -> T {
    let server = try await RedisServerProcess(extraArguments: extraArguments)
    do {
        let result = try await body(server)
        await server.dispose()
        return result
    } catch {
        await server.dispose()
        throw error
    }
}

/// Runs `body` with a ``RedisClient`` whose `run()` is going in a child task; stops it afterwards.
func withRunningClient<T: Sendable>(
    _ configuration: RedisConfiguration,
    _ body: (RedisClient) async throws -> T
) async throws -> T {
    let client = RedisClient(configuration: configuration)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await client.run()
            return nil
        }
        do {
            let result = try await body(client)
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `limit`.
func eventually(
    within limit: Duration = .seconds(10),
    _ condition: () async throws -> Bool
) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
