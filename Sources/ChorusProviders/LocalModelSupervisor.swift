#if canImport(Glibc)
public import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncHTTPClient
import ChorusCore
import Foundation
public import Logging
import NIOCore
import NIOHTTP1
public import ServiceLifecycle
import Synchronization

/// How to run one local model server.
public struct LocalModelSettings: Sendable, Equatable {
    /// The model name in Chorus.
    public var name: String
    /// `llama-server` (llama.cpp's OpenAI-compatible server).
    public var serverBinary: String
    /// The GGUF file.
    public var modelPath: String
    public var contextSize: Int
    /// Concurrent sequences (llama.cpp `--parallel`).
    public var parallel: Int
    /// GPU layers to offload (`-ngl`), when the machine has a GPU.
    public var gpuLayers: Int?
    public var extraArguments: [String]
    /// Where the server's stdout and stderr go.
    public var logPath: String
    /// How long loading may take before the attempt counts as failed.
    public var startupTimeout: Double

    public init(name: String, serverBinary: String, modelPath: String, contextSize: Int = 4096, parallel: Int = 4, gpuLayers: Int? = nil, extraArguments: [String] = [], logPath: String, startupTimeout: Double = 120) {
        self.name = name
        self.serverBinary = serverBinary
        self.modelPath = modelPath
        self.contextSize = contextSize
        self.parallel = parallel
        self.gpuLayers = gpuLayers
        self.extraArguments = extraArguments
        self.logPath = logPath
        self.startupTimeout = startupTimeout
    }
}

/// Starts llama.cpp's server on a free loopback port, waits until it is healthy, restarts it
/// (with backoff) if it dies, and stops it on shutdown. It is the endpoint of the model's provider.
public final class LocalModelSupervisor: Service, UpstreamEndpoint {
    public let settings: LocalModelSettings
    private let clients: UpstreamClients
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        var port: Int?
        var pid: pid_t?
        var restarts = 0
        var lastError: String?
        /// From the running server's `/props` (its chat template's capabilities).
        var callsTools: Bool?
    }

    public init(settings: LocalModelSettings, clients: UpstreamClients, logger: Logger) {
        self.settings = settings
        self.clients = clients
        self.logger = logger
    }

    /// The port of the healthy server, if any.
    public var readyPort: Int? { state.withLock { $0.port } }
    public var restartCount: Int { state.withLock { $0.restarts } }
    public var processID: pid_t? { state.withLock { $0.pid } }
    public var callsTools: Bool? { state.withLock { $0.callsTools } }

    public func baseURL(timeout: Double) async throws -> String {
        let deadline = ContinuousClock.now + .seconds(timeout)
        while true {
            if let port = readyPort { return "http://127.0.0.1:\(port)/v1" }
            guard ContinuousClock.now < deadline else {
                let reason = state.withLock { $0.lastError } ?? "the local model server is still starting"
                throw ChorusError.modelUnavailable(model: settings.name, reason: reason)
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var backoff = 1.0
            while !Task.isCancelled {
                do {
                    try await self.runOnce()
                    backoff = 1
                } catch is CancellationError {
                    break
                } catch {
                    self.state.withLock { $0.lastError = "\(error)" }
                    self.logger.error("local model server failed", metadata: ["model": "\(self.settings.name)", "error": "\(error)", "retry_in_s": "\(backoff)"])
                }
                guard !Task.isCancelled else { break }
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(backoff * 2, 30)
                self.state.withLock { $0.restarts += 1 }
            }
        }
    }

    /// One life of the server process: spawn, wait for health, watch until it exits.
    private func runOnce() async throws {
        let port = try Self.freeLoopbackPort()
        var arguments = [
            settings.serverBinary, "-m", settings.modelPath, "--host", "127.0.0.1", "--port", String(port),
            "-c", String(settings.contextSize), "--parallel", String(settings.parallel),
        ]
        if let layers = settings.gpuLayers { arguments += ["-ngl", String(layers)] }
        arguments += settings.extraArguments
        let pid = try Self.spawn(arguments, logPath: settings.logPath)
        state.withLock { $0.pid = pid }
        logger.info("started local model server", metadata: [
            "model": "\(settings.name)", "pid": "\(pid)", "port": "\(port)", "log": "\(settings.logPath)",
        ])
        defer {
            state.withLock { $0.port = nil; $0.pid = nil }
        }
        do {
            try await waitUntilHealthy(pid: pid, port: port)
            let callsTools = await toolSupport(port: port)
            state.withLock { $0.port = port; $0.lastError = nil; $0.callsTools = callsTools }
            logger.info("local model server is ready", metadata: ["model": "\(settings.name)", "port": "\(port)"])
            let status = try await Self.waitForExit(pid: pid)
            throw SupervisorError.exited(status: status)
        } catch {
            // Shutdown, a failed start, or an exit: make sure the process is gone before returning.
            await Task { await Self.terminate(pid: pid) }.value
            throw error
        }
    }

    private func waitUntilHealthy(pid: pid_t, port: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(settings.startupTimeout)
        while ContinuousClock.now < deadline {
            if let status = Self.exitStatus(pid: pid) {
                throw SupervisorError.exited(status: status)
            }
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/health")
            request.method = .GET
            let response = try? await clients.withClient { try await $0.execute(request, timeout: .seconds(2)) }
            if response?.status == .ok {
                return
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw SupervisorError.notHealthy(seconds: settings.startupTimeout)
    }

    /// `chat_template_caps.supports_tools` of the server's `/props`: an object in some llama.cpp
    /// versions, the text of a Python dict in others. Nil when the server does not say.
    private func toolSupport(port: Int) async -> Bool? {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/props")
        request.method = .GET
        guard let response = try? await clients.withClient({ try await $0.execute(request, timeout: .seconds(5)) }),
              response.status == .ok,
              let body = try? await response.body.collect(upTo: 1 << 20),
              let props = try? JSONValue.parse(body.readableBytesView)
        else { return nil }
        return Self.supportsTools(props["chat_template_caps"])
    }

    static func supportsTools(_ caps: JSONValue?) -> Bool? {
        switch caps {
        case .object(let object)?: return object["supports_tools"]?.boolValue
        case .string(let text)?:
            if text.contains("'supports_tools': True") || text.contains("\"supports_tools\": true") { return true }
            if text.contains("'supports_tools': False") || text.contains("\"supports_tools\": false") { return false }
            return nil
        default: return nil
        }
    }

    enum SupervisorError: Error, CustomStringConvertible {
        case exited(status: Int32)
        case notHealthy(seconds: Double)
        case spawnFailed(String)

        var description: String {
            switch self {
            case .exited(let status): "the server process exited (status \(status))"
            case .notHealthy(let seconds): "the server did not become healthy within \(Int(seconds)) s"
            case .spawnFailed(let reason): "could not start the server: \(reason)"
            }
        }
    }

    // MARK: Processes

    static func spawn(_ arguments: [String], logPath: String) throws -> pid_t {
        try FileManager.default.createDirectory(atPath: (logPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        guard FileManager.default.isExecutableFile(atPath: arguments[0]) else {
            throw SupervisorError.spawnFailed("\(arguments[0]) is not an executable file")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        let argv = arguments.map { strdup($0) } + [nil]
        let env = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            env.forEach { free($0) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, env)
        guard rc == 0 else {
            throw SupervisorError.spawnFailed(String(cString: strerror(rc)))
        }
        return pid
    }

    /// The exit status if the process has ended (and reaps it), nil while it runs.
    static func exitStatus(pid: pid_t) -> Int32? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid { return status }
        if result < 0 { return -1 }  // not our child any more
        return nil
    }

    static func waitForExit(pid: pid_t) async throws -> Int32 {
        while true {
            if let status = exitStatus(pid: pid) { return status }
            try await Task.sleep(for: .milliseconds(250))
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    static func terminate(pid: pid_t) async {
        guard exitStatus(pid: pid) == nil else { return }
        kill(pid, SIGTERM)
        for _ in 0..<50 {
            try? await Task.sleep(for: .milliseconds(100))
            if exitStatus(pid: pid) != nil { return }
        }
        kill(pid, SIGKILL)
        _ = try? await waitForExit(pid: pid)
    }

    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SupervisorError.spawnFailed("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa -> Bool in
                bind(fd, sa, length) == 0 && getsockname(fd, sa, &length) == 0
            }
        }
        guard bound else { throw SupervisorError.spawnFailed("could not find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
