import NIOCore
import NIOHTTP1
import NIOPosix

/// How work is offered.
enum LoadMode: Sendable {
    /// Open loop: request i is due at start + i/rate whatever happened to earlier ones. A request
    /// that finds no free connection waits in a queue, and its latency counts from when it was
    /// due (no coordinated omission).
    case open(rate: Double)
    /// Closed loop: each connection sends its next request when the previous one ends (saturation).
    case closed(connections: Int)
}

/// What each unit of work is.
enum Workload: Sendable {
    /// One request; success is a 2xx status and a complete body.
    case plain(RequestTemplate)
    /// One streamed request (SSE): tokens counted, first token and gaps timed.
    case stream(RequestTemplate, expectedTokens: Int)
    /// `POST /v1/batches`, then `GET /v1/tasks/{id}/events` on the same connection until `finish`.
    case task(submit: RequestTemplate, eventsHeaders: [(String, String)], host: String, port: Int, expectedTokens: Int)
}

struct DriverSettings: Sendable {
    var host: String
    var port: Int
    var mode: LoadMode
    var workload: Workload
    /// Connections opened before the clock starts (open loop; closed loop opens `connections`).
    var initialConnections: Int
    /// Most connections at once (open loop grows up to this when the target falls behind).
    var maxConnections: Int
    var warmupNanoseconds: UInt64
    var durationNanoseconds: UInt64
    /// Stop after this many requests (measured from the start, no warm-up); nil: by duration.
    var count: Int?
    /// How long to wait for outstanding work after the last request was due.
    var graceNanoseconds: UInt64
}

/// Runs a workload on one event loop and records what it sees.
final class Driver: @unchecked Sendable {
    let loop: any EventLoop
    let settings: DriverSettings
    var recorder = Recorder()
    private let done: EventLoopPromise<Recorder>

    private var startedAt: UInt64 = 0
    private var measureFrom: UInt64 = 0
    private var measureUntil: UInt64 = .max
    private var scheduled = 0
    private var schedulingDone = false
    private var idle: [Connection] = []
    private var open = 0
    private var connecting = 0
    private var backlog: [UInt64] = []
    private var backlogHead = 0
    private var inFlight: [ObjectIdentifier: UInt64] = [:]
    private var finished = false
    private var lastDueAt: UInt64 = 0
    private var connections: [ObjectIdentifier: Connection] = [:]
    private var pendingInitial = 0

    init(loop: any EventLoop, settings: DriverSettings) {
        self.loop = loop
        self.settings = settings
        self.done = loop.makePromise(of: Recorder.self)
    }

    /// Starts on the driver's loop; the future completes with what was recorded.
    func run() -> EventLoopFuture<Recorder> {
        loop.execute { self.begin() }
        return done.futureResult
    }

    // MARK: Scheduling

    private func begin() {
        let initial: Int
        switch settings.mode {
        case .open: initial = min(settings.initialConnections, settings.maxConnections)
        case .closed(let connections): initial = connections
        }
        // Connect first so the run does not measure connection set-up (open loop grows later).
        pendingInitial = initial
        guard initial > 0 else { startClock(); return }
        for _ in 0..<initial {
            connect { _ in
                self.pendingInitial -= 1
                if self.pendingInitial == 0 { self.startClock() }
            }
        }
    }

    private func startClock() {
        startedAt = nowNanoseconds()
        if settings.count == nil {
            measureFrom = startedAt + settings.warmupNanoseconds
            measureUntil = measureFrom + settings.durationNanoseconds
        } else {
            measureFrom = startedAt
            measureUntil = .max
        }
        switch settings.mode {
        case .open:
            tick()
        case .closed:
            let ready = idle
            idle.removeAll()
            for connection in ready { startNext(on: connection, intended: nowNanoseconds()) }
            checkDrained()
        }
    }

    private func tick() {
        guard case .open(let rate) = settings.mode, !schedulingDone else { return }
        let now = nowNanoseconds()
        let interval = 1e9 / rate
        let dueCount = Int(Double(now - startedAt) / interval) + 1
        while scheduled < dueCount {
            if let count = settings.count, scheduled >= count { break }
            let intended = startedAt + UInt64(Double(scheduled) * interval)
            if settings.count == nil && intended >= measureUntil { break }
            scheduled += 1
            lastDueAt = intended
            dispatch(intended: intended)
        }
        let exhausted: Bool
        if let count = settings.count {
            exhausted = scheduled >= count
        } else {
            exhausted = startedAt + UInt64(Double(scheduled) * interval) >= measureUntil
        }
        if exhausted {
            schedulingDone = true
            startDrain()
            return
        }
        // Every millisecond, or at the next due time when that is sooner than a millisecond away.
        let next = startedAt + UInt64(Double(scheduled) * interval)
        let wait = next > now ? min(next - now, 1_000_000) : 0
        loop.scheduleTask(in: .nanoseconds(Int64(max(wait, 100_000)))) { self.tick() }
    }

    private func dispatch(intended: UInt64) {
        if let connection = idle.popLast() {
            startExchange(on: connection, intended: intended)
            return
        }
        backlog.append(intended)
        if open + connecting < settings.maxConnections {
            connect { _ in }
        }
    }

    private func connect(then: @escaping @Sendable (Connection?) -> Void) {
        connecting += 1
        let connection = Connection(loop: loop, driver: self)
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                do {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(connection: connection))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        bootstrap.connect(host: settings.host, port: settings.port).whenComplete { result in
            self.connecting -= 1
            switch result {
            case .success(let channel):
                connection.channel = channel
                self.open += 1
                self.recorder.connectionsOpened += 1
                self.connections[ObjectIdentifier(connection)] = connection
                self.release(connection)
                then(connection)
            case .failure(let error):
                then(nil)
                // The work that was waiting for this connection cannot run: count it, don't spin.
                if self.backlogHead < self.backlog.count {
                    let intended = self.backlog[self.backlogHead]
                    self.backlogHead += 1
                    if self.isMeasured(intended) { self.recorder.error("connect: \(error)") }
                } else if case .closed = self.settings.mode, !self.finished {
                    self.recorder.error("connect: \(error)")
                }
                self.checkDrained()
            }
        }
    }

    /// A connection is free: give it the next piece of work, or park it.
    func release(_ connection: Connection) {
        guard !finished else { connection.close(); return }
        guard connection.keepAlive, !connection.closed else {
            connection.close()
            return
        }
        switch settings.mode {
        case .open:
            if backlogHead < backlog.count {
                let intended = backlog[backlogHead]
                backlogHead += 1
                if backlogHead > 4096 && backlogHead * 2 > backlog.count {
                    backlog.removeFirst(backlogHead)
                    backlogHead = 0
                }
                startExchange(on: connection, intended: intended)
            } else {
                idle.append(connection)
                checkDrained()
            }
        case .closed:
            if startedAt == 0 {
                idle.append(connection)
            } else {
                startNext(on: connection, intended: nowNanoseconds())
            }
        }
    }

    private func startNext(on connection: Connection, intended: UInt64) {
        if let count = settings.count, scheduled >= count {
            if !schedulingDone { schedulingDone = true; startDrain() }
            idle.append(connection)
            checkDrained()
            return
        }
        if settings.count == nil && intended >= measureUntil {
            if !schedulingDone { schedulingDone = true; startDrain() }
            idle.append(connection)
            checkDrained()
            return
        }
        scheduled += 1
        lastDueAt = intended
        startExchange(on: connection, intended: intended)
    }

    private func startExchange(on connection: Connection, intended: UInt64) {
        let exchange: any Exchange
        switch settings.workload {
        case .plain(let request):
            exchange = PlainExchange(driver: self, request: request, intended: intended)
        case .stream(let request, let expected):
            exchange = StreamExchange(driver: self, request: request, intended: intended, expectedTokens: expected)
        case .task(let submit, let headers, let host, let port, let expected):
            exchange = TaskExchange(driver: self, submit: submit, eventsHeaders: headers, host: host, port: port, intended: intended, expectedTokens: expected)
        }
        inFlight[ObjectIdentifier(exchange)] = intended
        recorder.peakInFlight = max(recorder.peakInFlight, inFlight.count)
        exchange.start(on: connection)
    }

    /// Whether work due at `intended` is recorded. Nothing is once the run has finished: what was
    /// outstanding then is already counted as incomplete, and closing its connection must not
    /// count it again.
    func isMeasured(_ intended: UInt64) -> Bool {
        !finished && intended >= measureFrom && intended < measureUntil
    }

    /// Counts a successful completion at `now` toward the served rate.
    func completed(at now: UInt64) {
        if !finished && now >= measureFrom && now < measureUntil { recorder.completedInWindow += 1 }
    }

    /// An exchange ended (recorded by itself). `connection` is nil when it is unusable.
    func finished(_ exchange: any Exchange, connection: Connection?) {
        inFlight[ObjectIdentifier(exchange)] = nil
        if let connection {
            release(connection)
        }
        checkDrained()
    }

    func connectionClosed(_ connection: Connection) {
        connections[ObjectIdentifier(connection)] = nil
        open -= 1
        if let index = idle.firstIndex(where: { $0 === connection }) { idle.remove(at: index) }
        if !finished, backlogHead < backlog.count, open + connecting < settings.maxConnections {
            connect { _ in }
        }
        if !finished, case .closed = settings.mode, !schedulingDone, open + connecting < settings.initialConnectionsForClosed {
            connect { _ in }
        }
        checkDrained()
    }

    // MARK: Ending

    private func startDrain() {
        drainPoll(deadline: max(lastDueAt, nowNanoseconds()) + settings.graceNanoseconds)
    }

    private func drainPoll(deadline: UInt64) {
        guard !finished else { return }
        if nowNanoseconds() >= deadline {
            finish()
        } else {
            checkDrained()
            if !finished { loop.scheduleTask(in: .milliseconds(10)) { self.drainPoll(deadline: deadline) } }
        }
    }

    private func checkDrained() {
        guard schedulingDone, !finished else { return }
        if inFlight.isEmpty && backlogHead >= backlog.count { finish() }
    }

    private func finish() {
        guard !finished else { return }
        let now = nowNanoseconds()
        // What never finished counts as an error, with the time it had waited as its latency
        // (a lower bound): dropping it would hide exactly the overload a benchmark must show.
        for intended in inFlight.values where isMeasured(intended) {
            recorder.incomplete += 1
            recorder.error("incomplete at the end of the run")
            recorder.latency.recordNanoseconds(now - intended)
        }
        if backlogHead < backlog.count {
            for intended in backlog[backlogHead...] where isMeasured(intended) {
                recorder.incomplete += 1
                recorder.error("incomplete at the end of the run")
                recorder.latency.recordNanoseconds(now - intended)
            }
        }
        finished = true
        inFlight.removeAll()
        for connection in connections.values { connection.close() }
        idle.removeAll()
        done.succeed(recorder)
    }
}

extension DriverSettings {
    var initialConnectionsForClosed: Int {
        if case .closed(let connections) = mode { return connections }
        return 0
    }
}

// MARK: - Exchanges

final class PlainExchange: Exchange {
    unowned let driver: Driver
    let request: RequestTemplate
    let intended: UInt64
    var status = 0
    weak var connection: Connection?

    init(driver: Driver, request: RequestTemplate, intended: UInt64) {
        self.driver = driver
        self.request = request
        self.intended = intended
    }

    func start(on connection: Connection) {
        self.connection = connection
        connection.send(request, exchange: self)
    }

    func head(_ head: HTTPResponseHead, at now: UInt64) { status = Int(head.status.code) }
    func body(_ buffer: ByteBuffer, at now: UInt64) {}

    func end(at now: UInt64) {
        if (200..<300).contains(status) { driver.completed(at: now) }
        if driver.isMeasured(intended) {
            driver.recorder.statusCounts[status, default: 0] += 1
            if (200..<300).contains(status) {
                driver.recorder.ok += 1
                driver.recorder.latency.recordNanoseconds(now - intended)
            } else {
                driver.recorder.error("HTTP \(status)")
            }
        }
        driver.finished(self, connection: connection)
    }

    func fail(_ message: String, at now: UInt64) {
        if driver.isMeasured(intended) { driver.recorder.error(message) }
        driver.finished(self, connection: nil)
    }
}

final class StreamExchange: Exchange {
    unowned let driver: Driver
    let request: RequestTemplate
    let intended: UInt64
    let expectedTokens: Int
    var status = 0
    var scanner = LineScanner()
    var tokens = 0
    var lastTokenAt: UInt64 = 0
    weak var connection: Connection?

    init(driver: Driver, request: RequestTemplate, intended: UInt64, expectedTokens: Int) {
        self.driver = driver
        self.request = request
        self.intended = intended
        self.expectedTokens = expectedTokens
    }

    func start(on connection: Connection) {
        self.connection = connection
        connection.send(request, exchange: self)
    }

    func head(_ head: HTTPResponseHead, at now: UInt64) { status = Int(head.status.code) }

    func body(_ buffer: ByteBuffer, at now: UInt64) {
        let measured = driver.isMeasured(intended)
        scanner.feed(buffer) { line in
            guard SSE.carriesContent(line) else { return }
            tokens += 1
            if measured {
                if tokens == 1 {
                    driver.recorder.firstToken.recordNanoseconds(now - intended)
                } else {
                    driver.recorder.tokenGap.recordNanoseconds(now - lastTokenAt)
                }
            }
            lastTokenAt = now
        }
    }

    func end(at now: UInt64) {
        if (200..<300).contains(status) { driver.completed(at: now) }
        if driver.isMeasured(intended) {
            driver.recorder.statusCounts[status, default: 0] += 1
            driver.recorder.tokensExpected += expectedTokens
            driver.recorder.tokensReceived += tokens
            if (200..<300).contains(status) {
                driver.recorder.ok += 1
                driver.recorder.latency.recordNanoseconds(now - intended)
                if tokens < expectedTokens { driver.recorder.streamsShort += 1 }
            } else {
                driver.recorder.error("HTTP \(status)")
            }
        }
        driver.finished(self, connection: connection)
    }

    func fail(_ message: String, at now: UInt64) {
        if driver.isMeasured(intended) {
            driver.recorder.error(message)
            driver.recorder.tokensExpected += expectedTokens
            driver.recorder.tokensReceived += tokens
            driver.recorder.streamsShort += 1
        }
        driver.finished(self, connection: nil)
    }
}

/// Chorus's asynchronous path: submit a batch of one task, then follow its events.
final class TaskExchange: Exchange {
    unowned let driver: Driver
    let submit: RequestTemplate
    let eventsHeaders: [(String, String)]
    let host: String
    let port: Int
    let intended: UInt64
    let expectedTokens: Int
    var phase = 0
    var status = 0
    var submitBody: [UInt8] = []
    var scanner = LineScanner()
    var tokens = 0
    var sawFinish = false
    var sawError = false
    var lastTokenAt: UInt64 = 0
    weak var connection: Connection?

    init(driver: Driver, submit: RequestTemplate, eventsHeaders: [(String, String)], host: String, port: Int, intended: UInt64, expectedTokens: Int) {
        self.driver = driver
        self.submit = submit
        self.eventsHeaders = eventsHeaders
        self.host = host
        self.port = port
        self.intended = intended
        self.expectedTokens = expectedTokens
    }

    func start(on connection: Connection) {
        self.connection = connection
        connection.send(submit, exchange: self)
    }

    func head(_ head: HTTPResponseHead, at now: UInt64) { status = Int(head.status.code) }

    func body(_ buffer: ByteBuffer, at now: UInt64) {
        if phase == 0 {
            submitBody.append(contentsOf: buffer.readableBytesView)
            return
        }
        let measured = driver.isMeasured(intended)
        scanner.feed(buffer) { line in
            if let name = SSE.eventName(line) {
                if name.elementsEqual("answer".utf8) {
                    tokens += 1
                    if measured {
                        if tokens == 1 {
                            driver.recorder.firstToken.recordNanoseconds(now - intended)
                        } else {
                            driver.recorder.tokenGap.recordNanoseconds(now - lastTokenAt)
                        }
                    }
                    lastTokenAt = now
                } else if name.elementsEqual("finish".utf8) {
                    sawFinish = true
                } else if name.elementsEqual("error".utf8) {
                    sawError = true
                }
            }
        }
    }

    func end(at now: UInt64) {
        let measured = driver.isMeasured(intended)
        if phase == 0 {
            guard (200..<300).contains(status), let id = SSE.firstTaskID(submitBody), let connection, connection.keepAlive else {
                if measured {
                    driver.recorder.statusCounts[status, default: 0] += 1
                    driver.recorder.error("submit: HTTP \(status) \(String(decoding: submitBody.prefix(200), as: UTF8.self))")
                }
                driver.finished(self, connection: connection)
                return
            }
            if measured { driver.recorder.accepted.recordNanoseconds(now - intended) }
            phase = 1
            status = 0
            let events = RequestTemplate(method: .GET, path: "/v1/tasks/\(id)/events", host: host, port: port, headers: eventsHeaders, body: nil)
            connection.send(events, exchange: self)
            return
        }
        if (200..<300).contains(status) && sawFinish && !sawError { driver.completed(at: now) }
        if measured {
            driver.recorder.statusCounts[status, default: 0] += 1
            driver.recorder.tokensExpected += expectedTokens
            driver.recorder.tokensReceived += tokens
            if (200..<300).contains(status) && sawFinish && !sawError {
                driver.recorder.ok += 1
                driver.recorder.latency.recordNanoseconds(now - intended)
                if tokens < expectedTokens { driver.recorder.streamsShort += 1 }
            } else {
                driver.recorder.error(sawError ? "task ended with an error event" : "events: HTTP \(status), finish=\(sawFinish)")
            }
        }
        driver.finished(self, connection: connection)
    }

    func fail(_ message: String, at now: UInt64) {
        if driver.isMeasured(intended) { driver.recorder.error("\(phase == 0 ? "submit" : "events"): \(message)") }
        driver.finished(self, connection: nil)
    }
}
