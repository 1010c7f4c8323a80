public import Logging
public import NIOCore
public import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The Redis client Chorus uses: a small set of shared, pipelined connections plus a bounded set
/// of connections leased exclusively for blocking commands. It is a `Service`: add it to the
/// application's `ServiceGroup` (or call ``run()``) before sending; commands sent earlier wait for
/// the first connection, up to their timeout.
///
/// ## Shared connections (multiplexed)
/// ``RedisConfiguration/connectionCount`` connections are opened when ``run()`` starts and kept open.
/// Slot *i* lives on the group's event loop *i* (modulo their number). A command goes to the next
/// open connection on the caller's own event loop, round-robin (to any open one when the caller is
/// not on an event loop of the group, or its loop has none open), and is pipelined there with
/// whatever else is in flight, so callers never queue for a connection while one is open. Staying
/// on the caller's loop saves a thread hand-off each way: the reply resumes the caller where it was.
/// A ``pipeline(_:timeout:)`` goes to one connection as a whole.
///
/// ## Dedicated connections (exclusive leases)
/// Blocking commands (`XREADGROUP ... BLOCK`, `XREAD BLOCK`, `BLPOP`) would hold up every command
/// pipelined behind them, so they run on a connection leased exclusively:
/// ``withDedicatedConnection(isolation:timeout:_:)``, or ``send(_:timeout:blocking:)`` with `blocking: true`
/// (the typed stream helpers do this whenever a `block` time is given). At most
/// ``RedisConfiguration/maxDedicatedConnections`` exist at once, opened on demand and kept for reuse;
/// when all are leased, further leases wait in FIFO order (up to their timeout).
/// A lease whose body throws anything but a server error, or whose connection closed, closes the
/// connection instead of returning it (a cancelled blocking command would otherwise still hold it).
///
/// ## When Redis goes away
/// Commands in flight on a lost connection fail with ``RedisError/connectionClosed`` (their outcome is
/// unknown). Each shared connection is reopened at once, then with exponential backoff and jitter
/// (``RedisConfiguration/reconnectBackoff``) while attempts fail. Commands issued while no shared
/// connection is open **wait** for the reconnect, up to their timeout, and then fail with
/// ``RedisError/connectionFailed(_:)`` carrying the last connect error; they were never sent, so a
/// retry is safe. Dedicated leases likewise retry connecting with backoff until their timeout.
///
/// ## Shutdown
/// On graceful shutdown or cancellation of ``run()``, every connection (leased ones included) is
/// closed, waiting callers fail with ``RedisError/clientShutdown``, and later calls fail the same way.
public final class RedisClient: RedisCommandSender, Service, Sendable {
    public let configuration: RedisConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    private let state: Mutex<State>

    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "chorus.redis")
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.state = Mutex(State(sharedSlots: configuration.connectionCount))
    }

    public var defaultCommandTimeout: Duration { self.configuration.commandTimeout }

    // MARK: - Sending

    @discardableResult
    public func send(_ command: RedisCommand, timeout: Duration?, blocking: Bool) async throws -> RESPValue {
        if blocking {
            return try await self.withDedicatedConnection { connection in
                try await connection.send(command, timeout: timeout, blocking: true)
            }
        }
        let deadline = ContinuousClock.now + (timeout ?? self.configuration.commandTimeout)
        return try await self.onSharedConnection(deadline: deadline) { connection in
            try await connection.sendUnlessClosing(command, timeout: Self.remaining(until: deadline))
        }
    }

    @discardableResult
    public func pipeline(_ commands: [RedisCommand], timeout: Duration?) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let deadline = ContinuousClock.now + (timeout ?? self.configuration.commandTimeout)
        return try await self.onSharedConnection(deadline: deadline) { connection in
            try await connection.pipelineUnlessClosing(commands, timeout: Self.remaining(until: deadline))
        }
    }

    /// Runs `operation` on the next shared connection; when that connection refuses it unsent
    /// because it is closing, takes the next one (or waits for the reconnect) until the deadline.
    private func onSharedConnection<T>(
        deadline: ContinuousClock.Instant,
        _ operation: (RedisConnection) async throws -> T
    ) async throws -> T {
        while true {
            let connection = try await self.sharedConnection(deadline: deadline)
            do {
                return try await operation(connection)
            } catch is CommandNotSent {
                self.state.withLock { state in state.forgetShared(connection) }
                if ContinuousClock.now >= deadline {
                    throw RedisError.connectionFailed("every connection closed before the command could be sent")
                }
            }
        }
    }

    /// Leases a connection for the exclusive use of `body`, for blocking commands or a sequence that
    /// must share one connection. Do not keep the connection after `body` returns.
    ///
    /// - Parameter timeout: How long to wait for a connection (all leased, or Redis unreachable);
    ///   `nil` means ``RedisConfiguration/commandTimeout``. It does not limit `body`.
    public func withDedicatedConnection<T>(
        isolation: isolated (any Actor)? = #isolation,
        timeout: Duration? = nil,
        _ body: (RedisConnection) async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + (timeout ?? self.configuration.commandTimeout)
        let connection = try await self.leaseDedicatedConnection(deadline: deadline)
        let result: T
        do {
            result = try await body(connection)
        } catch {
            let isServerError = (error as? RedisError)?.serverErrorCode != nil
            self.releaseDedicatedConnection(connection, reusable: isServerError && connection.isConnected)
            throw error
        }
        self.releaseDedicatedConnection(connection, reusable: connection.isConnected)
        return result
    }

    /// The connections open and in use now, read under the state's lock (for `/metrics`).
    public var usage: RedisConnectionUsage {
        state.withLock { state in
            RedisConnectionUsage(
                sharedOpen: state.shared.lazy.compactMap { $0 }.count, sharedMaximum: configuration.connectionCount,
                dedicatedLeased: state.leasedDedicated.count, dedicatedOpen: state.dedicatedCount,
                dedicatedWaiting: state.dedicatedWaiters.count, dedicatedMaximum: configuration.maxDedicatedConnections)
        }
    }

    private static func remaining(until deadline: ContinuousClock.Instant) -> Duration {
        max(deadline - ContinuousClock.now, .milliseconds(1))
    }

    // MARK: - Service

    /// Opens and maintains the shared connections until graceful shutdown or cancellation, then closes everything.
    public func run() async throws {
        let isFirstRun = self.state.withLock { state in
            guard case .notStarted = state.lifecycle else { return false }
            state.lifecycle = .running
            return true
        }
        guard isFirstRun else { throw RedisError.clientShutdown }
        self.logger.debug(
            "Redis client starting",
            metadata: [
                "redis.address": "\(self.configuration.host):\(self.configuration.port)",
                "redis.connections": "\(self.configuration.connectionCount)",
            ]
        )
        let slots = self.configuration.connectionCount
        let loops = Array(self.eventLoopGroup.makeIterator())
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for slot in 0..<slots {
                    let loop = loops[slot % loops.count]
                    group.addTask { await self.maintainSharedConnection(slot: slot, on: loop) }
                }
            }
        }
        await self.shutDown()
    }

    private func shutDown() async {
        let (connections, sharedWaiters, dedicatedWaiters) = self.state.withLock { state in
            state.lifecycle = .shutDown
            let connections = state.shared.compactMap { $0 } + state.idleDedicated + Array(state.leasedDedicated.values)
            state.shared = state.shared.map { _ in nil }
            state.idleDedicated.removeAll()
            state.leasedDedicated.removeAll()
            let sharedWaiters = Array(state.sharedWaiters.values)
            state.sharedWaiters.removeAll()
            let dedicatedWaiters = state.dedicatedWaiters.map(\.continuation)
            state.dedicatedWaiters.removeAll()
            return (connections, sharedWaiters, dedicatedWaiters)
        }
        for waiter in sharedWaiters { waiter.resume(throwing: RedisError.clientShutdown) }
        for waiter in dedicatedWaiters { waiter.resume(throwing: RedisError.clientShutdown) }
        for connection in connections { connection.closeNow() }
        for connection in connections { await connection.waitUntilClosed() }
        self.logger.debug("Redis client shut down")
    }

    /// Keeps one shared slot connected, on `loop`, until cancelled.
    private func maintainSharedConnection(slot: Int, on loop: any EventLoop) async {
        var failures = 0
        while !Task.isCancelled {
            let connection: RedisConnection
            do {
                connection = try await RedisConnection.connect(configuration: self.configuration, eventLoopGroup: loop, logger: self.logger)
            } catch {
                if Task.isCancelled { return }  // shutting down mid-connect
                failures += 1
                self.state.withLock { $0.lastConnectError = error }
                let delay = self.configuration.reconnectBackoff.delay(afterFailure: failures)
                let metadata: Logger.Metadata = ["error": "\(error)", "redis.slot": "\(slot)", "retry_in": "\(delay)"]
                if failures == 1 {
                    self.logger.warning("Cannot connect to Redis; retrying with backoff", metadata: metadata)
                } else {
                    self.logger.debug("Cannot connect to Redis", metadata: metadata)
                }
                do { try await Task.sleep(for: delay) } catch { return }
                continue
            }
            if failures > 0 {
                self.logger.info("Reconnected to Redis", metadata: ["redis.slot": "\(slot)", "failed_attempts": "\(failures)"])
            }
            guard self.installSharedConnection(connection, slot: slot) else {
                await connection.close()
                return
            }
            let connectedAt = ContinuousClock.now
            await withTaskCancellationHandler {
                await connection.waitUntilClosed()
            } onCancel: {
                connection.closeNow()
            }
            self.state.withLock { state in
                if state.shared[slot] === connection { state.shared[slot] = nil }
            }
            if Task.isCancelled { return }
            self.logger.warning("Lost a Redis connection; reconnecting", metadata: ["redis.slot": "\(slot)"])
            if ContinuousClock.now - connectedAt < .seconds(1) {
                // It died young: back off rather than spin if the server keeps dropping new connections.
                failures += 1
                do { try await Task.sleep(for: self.configuration.reconnectBackoff.delay(afterFailure: failures)) } catch { return }
            } else {
                failures = 0
            }
        }
    }

    /// Puts a fresh connection in its slot and hands it to everyone waiting; `false` when shut down.
    private func installSharedConnection(_ connection: RedisConnection, slot: Int) -> Bool {
        let waiters: [CheckedContinuation<RedisConnection, any Error>]? = self.state.withLock { state in
            guard case .running = state.lifecycle else { return nil }
            state.shared[slot] = connection
            state.lastConnectError = nil
            let waiters = Array(state.sharedWaiters.values)
            state.sharedWaiters.removeAll()
            return waiters
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: connection) }
        return true
    }

    // MARK: - Shared connections

    private func sharedConnection(deadline: ContinuousClock.Instant) async throws -> RedisConnection {
        let immediate: Result<RedisConnection, RedisError>? = self.state.withLock { state in
            if case .shutDown = state.lifecycle { return .failure(.clientShutdown) }
            return state.nextSharedConnection().map { .success($0) }
        }
        if let immediate { return try immediate.get() }
        let configuration = self.configuration
        return try await withDeadline(
            deadline,
            timeoutError: {
                let last = self.state.withLock { $0.lastConnectError }
                return RedisError.connectionFailed(
                    "no connection to \(configuration.host):\(configuration.port) became available in time"
                        + (last.map { " (last error: \($0))" } ?? "")
                )
            },
            { try await self.waitForSharedConnection() }
        )
    }

    private func waitForSharedConnection() async throws -> RedisConnection {
        let id = self.state.withLock { $0.makeWaiterID() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<RedisConnection, any Error>) in
                let immediate: Result<RedisConnection, any Error>? = self.state.withLock { state in
                    if case .shutDown = state.lifecycle { return .failure(RedisError.clientShutdown) }
                    if let connection = state.nextSharedConnection() { return .success(connection) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.sharedWaiters[id] = continuation
                    return nil
                }
                if let immediate { continuation.resume(with: immediate) }
            }
        } onCancel: {
            let waiter = self.state.withLock { $0.sharedWaiters.removeValue(forKey: id) }
            waiter?.resume(throwing: CancellationError())
        }
    }

    // MARK: - Dedicated connections

    private enum LeaseDecision {
        case use(RedisConnection)
        case connect
        case wait
    }

    private func leaseDedicatedConnection(deadline: ContinuousClock.Instant) async throws -> RedisConnection {
        let maximum = self.configuration.maxDedicatedConnections
        let decision: LeaseDecision = try self.state.withLock { state throws(RedisError) in
            if case .shutDown = state.lifecycle { throw .clientShutdown }
            while let connection = state.idleDedicated.popLast() {
                if connection.isConnected {
                    state.leasedDedicated[ObjectIdentifier(connection)] = connection
                    return .use(connection)
                }
                state.dedicatedCount -= 1
            }
            if state.dedicatedCount < maximum {
                state.dedicatedCount += 1
                return .connect
            }
            return .wait
        }
        switch decision {
        case .use(let connection):
            return connection
        case .connect:
            return try await self.openDedicatedConnection(deadline: deadline)
        case .wait:
            let grant = try await withDeadline(
                deadline,
                timeoutError: { RedisError.connectionFailed("all \(maximum) dedicated Redis connections stayed leased") },
                lateResult: { self.giveBack($0) },
                { try await self.waitForDedicatedGrant() }
            )
            switch grant {
            case .connection(let connection): return connection
            case .permitToConnect: return try await self.openDedicatedConnection(deadline: deadline)
            }
        }
    }

    /// Connects for a lease whose slot (`dedicatedCount`) is already counted; gives the slot back on failure.
    private func openDedicatedConnection(deadline: ContinuousClock.Instant) async throws -> RedisConnection {
        let connection: RedisConnection
        do {
            connection = try await self.connectRetrying(until: deadline)
        } catch {
            self.giveBack(.permitToConnect)
            throw error
        }
        let accepted = self.state.withLock { state in
            guard case .shutDown = state.lifecycle else {
                state.leasedDedicated[ObjectIdentifier(connection)] = connection
                return true
            }
            state.dedicatedCount -= 1
            return false
        }
        guard accepted else {
            connection.closeNow()
            throw RedisError.clientShutdown
        }
        return connection
    }

    private func connectRetrying(until deadline: ContinuousClock.Instant) async throws -> RedisConnection {
        var failures = 0
        while true {
            do {
                return try await RedisConnection.connect(
                    configuration: self.configuration,
                    eventLoopGroup: self.eventLoopGroup,
                    logger: self.logger
                )
            } catch {
                try Task.checkCancellation()
                failures += 1
                self.state.withLock { $0.lastConnectError = error }
                let delay = self.configuration.reconnectBackoff.delay(afterFailure: failures)
                guard ContinuousClock.now + delay < deadline else { throw error }
                try await Task.sleep(for: delay)
            }
        }
    }

    private func waitForDedicatedGrant() async throws -> DedicatedGrant {
        let id = self.state.withLock { $0.makeWaiterID() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<DedicatedGrant, any Error>) in
                let failure: (any Error)? = self.state.withLock { state in
                    if case .shutDown = state.lifecycle { return RedisError.clientShutdown }
                    if Task.isCancelled { return CancellationError() }
                    state.dedicatedWaiters.append((id, continuation))
                    return nil
                }
                if let failure { continuation.resume(throwing: failure) }
            }
        } onCancel: {
            let waiter: CheckedContinuation<DedicatedGrant, any Error>? = self.state.withLock { state in
                guard let index = state.dedicatedWaiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.dedicatedWaiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    private func releaseDedicatedConnection(_ connection: RedisConnection, reusable: Bool) {
        let key = ObjectIdentifier(connection)
        let next: CheckedContinuation<DedicatedGrant, any Error>? = self.state.withLock { state in
            guard state.leasedDedicated.removeValue(forKey: key) != nil else { return nil }  // closed by shutdown
            if reusable, !state.dedicatedWaiters.isEmpty {
                state.leasedDedicated[key] = connection
                return state.dedicatedWaiters.removeFirst().continuation
            }
            if reusable {
                state.idleDedicated.append(connection)
                return nil
            }
            if !state.dedicatedWaiters.isEmpty {
                return state.dedicatedWaiters.removeFirst().continuation  // the slot passes on: it may connect
            }
            state.dedicatedCount -= 1
            return nil
        }
        if !reusable { connection.closeNow() }
        next?.resume(returning: reusable ? .connection(connection) : .permitToConnect)
    }

    /// Returns a grant that nobody will use (its waiter timed out as it arrived).
    private func giveBack(_ grant: DedicatedGrant) {
        switch grant {
        case .connection(let connection):
            self.releaseDedicatedConnection(connection, reusable: connection.isConnected)
        case .permitToConnect:
            let next: CheckedContinuation<DedicatedGrant, any Error>? = self.state.withLock { state in
                if !state.dedicatedWaiters.isEmpty { return state.dedicatedWaiters.removeFirst().continuation }
                state.dedicatedCount -= 1
                return nil
            }
            next?.resume(returning: .permitToConnect)
        }
    }

    // MARK: - State

    private enum DedicatedGrant: Sendable {
        /// A connection handed over by the lease that released it.
        case connection(RedisConnection)
        /// A released slot: the waiter may open a connection.
        case permitToConnect
    }

    private enum Lifecycle {
        case notStarted, running, shutDown
    }

    private struct State {
        var lifecycle = Lifecycle.notStarted
        var lastConnectError: RedisError?
        var nextWaiterID = 0

        /// Shared connections by slot; `nil` while that slot is (re)connecting.
        var shared: [RedisConnection?]
        var nextSharedSlot = 0
        var sharedWaiters: [Int: CheckedContinuation<RedisConnection, any Error>] = [:]

        var idleDedicated: [RedisConnection] = []
        var leasedDedicated: [ObjectIdentifier: RedisConnection] = [:]
        /// Idle, leased and connecting dedicated connections: at most `maxDedicatedConnections`.
        var dedicatedCount = 0
        var dedicatedWaiters: [(id: Int, continuation: CheckedContinuation<DedicatedGrant, any Error>)] = []

        init(sharedSlots: Int) {
            self.shared = Array(repeating: nil, count: sharedSlots)
        }

        mutating func makeWaiterID() -> Int {
            self.nextWaiterID += 1
            return self.nextWaiterID
        }

        /// Takes a connection that refused a command out of its slot, so it is not picked again.
        mutating func forgetShared(_ connection: RedisConnection) {
            for slot in self.shared.indices where self.shared[slot] === connection {
                self.shared[slot] = nil
            }
        }

        /// The next open shared connection on the caller's event loop, round-robin; else the next
        /// open one anywhere.
        mutating func nextSharedConnection() -> RedisConnection? {
            let count = self.shared.count
            var elsewhere: (slot: Int, connection: RedisConnection)?
            for offset in 0..<count {
                let slot = (self.nextSharedSlot + offset) % count
                guard let connection = self.shared[slot], connection.isConnected else { continue }
                if connection.channel.eventLoop.inEventLoop {
                    self.nextSharedSlot = (slot + 1) % count
                    return connection
                }
                if elsewhere == nil { elsewhere = (slot, connection) }
            }
            guard let elsewhere else { return nil }
            self.nextSharedSlot = (elsewhere.slot + 1) % count
            return elsewhere.connection
        }
    }
}
