import ChorusCore
public import ChorusStore
import Foundation
public import Logging
public import ServiceLifecycle
import Synchronization
import Tracing

/// Consumes the queues, claims tasks in the database, runs their handlers, publishes their
/// events, and keeps their leases alive. Any number run side by side; the conditional claim makes
/// a task run once however often it is delivered.
public final class TaskWorker: Service {
    let settings: WorkerSettings
    let queue: any TaskQueue
    let bus: any TaskEventBus
    let tasks: SQLTaskStore
    let handlers: [String: any TaskHandler]
    let logger: Logger
    private let running = Mutex<[String: RunningTask]>([:])
    private let slots: Slots
    /// Set on graceful shutdown: what this worker holds or is given from then on is handed back.
    private let stopping = Atomic<Bool>(false)
    /// The cancellation reason of a run stopped because its worker is stopping.
    static let stoppingReason = "worker_stopping"

    struct RunningTask {
        let job: Task<Void, Never>
        let note: CancellationNote
    }

    public init(settings: WorkerSettings, queue: any TaskQueue, bus: any TaskEventBus, tasks: SQLTaskStore, handlers: [any TaskHandler], logger: Logger) {
        self.settings = settings
        self.queue = queue
        self.bus = bus
        self.tasks = tasks
        self.handlers = Dictionary(handlers.map { ($0.type, $0) }, uniquingKeysWith: { first, _ in first })
        var logger = logger
        logger[metadataKey: "worker"] = .string(settings.id)
        self.logger = logger
        self.slots = Slots(settings.concurrency)
    }

    public var runningTaskIDs: [String] { running.withLock { Array($0.keys) } }

    public func run() async throws {
        let startedAt = nowMilliseconds()
        logger.info("worker started", metadata: ["queues": "\(settings.queues.joined(separator: ","))"])
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.loop(every: .milliseconds(self.settings.leaseMilliseconds / 3)) { try await self.heartbeat(startedAt: startedAt) } }
            group.addTask { await self.loop(every: .seconds(1)) { self.stopCancelled(try await self.tasks.cancelRequested(taskIDs: self.runningTaskIDs)) } }
            group.addTask { await self.loop(every: .milliseconds(self.settings.leaseMilliseconds / 2)) { try await self.reclaim() } }
            group.addTask { await self.loop(every: .milliseconds(self.settings.requeueAfterMilliseconds / 2)) { try await self.reconcile() } }
            let unstarted = await self.consume()
            // Draining: the consumer stopped taking work. Each task this worker holds is handed
            // back at once (its run stopped, its lease ended, its id queued again), so that another
            // worker resumes it in a moment rather than when the lease runs out; wait for the runs
            // to wind down (their leases are still renewed meanwhile), then stop the housekeeping.
            self.stopRunning()
            for delivery in unstarted { await self.handBack(delivery) }
            await self.slots.waitUntilIdle()
            group.cancelAll()
        }
        logger.info("worker stopped")
    }

    /// Runs `body` now and then every `interval` until the group is cancelled; errors are logged.
    private func loop(every interval: Duration, _ body: @Sendable () async throws -> Void) async {
        while !Task.isCancelled {
            do {
                try await body()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("worker housekeeping failed; will retry", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Takes work until graceful shutdown; returns the entries received but not started.
    private func consume() async -> [QueueDelivery] {
        await cancelWhenGracefulShutdown {
            var backoff = 0.1
            // A read may return up to `count` entries per queue: what exceeds the free slots waits
            // here (in this worker's pending list, reclaimable if it dies) for a slot.
            var backlog: [QueueDelivery] = []
            while !Task.isCancelled {
                let free = await self.slots.waitForFree()
                guard !Task.isCancelled else { return backlog }
                if !backlog.isEmpty {
                    let now = backlog.prefix(free)
                    backlog.removeFirst(now.count)
                    for delivery in now { await self.handle(delivery) }
                    continue
                }
                do {
                    var deliveries = try await self.queue.receive(models: self.settings.queues, consumer: self.settings.id, count: free)
                    if deliveries.count > free {
                        backlog = Array(deliveries[free...])
                        deliveries.removeLast(deliveries.count - free)
                    }
                    for delivery in deliveries { await self.handle(delivery) }
                    backoff = 0.1
                } catch is CancellationError {
                    return backlog
                } catch {
                    self.logger.warning("receiving from the queue failed; retrying", metadata: ["error": "\(error)", "retry_in_s": "\(backoff)"])
                    try? await Task.sleep(for: .milliseconds(Int64(backoff * 1000)))
                    backoff = min(backoff * 2, 5)
                }
            }
            return backlog
        }
    }

    /// Stops every run for hand-back (a run whose cancellation was asked stays cancelled).
    private func stopRunning() {
        stopping.store(true, ordering: .relaxed)
        running.withLock { running in
            for task in running.values {
                if task.note.reason == nil { task.note.reason = Self.stoppingReason }
                task.job.cancel()
            }
        }
    }

    /// An entry this stopping worker will not run: queued again as it is, for another worker.
    private func handBack(_ delivery: QueueDelivery) async {
        guard let taskID = delivery.taskID else { return }
        do {
            try await queue.enqueue(taskID: taskID, model: delivery.model)
            try await queue.acknowledge(delivery)
        } catch {
            logger.warning("could not hand a queue entry back; it waits for its lease", metadata: ["entry": "\(delivery.entryID)", "error": "\(error)"])
        }
    }

    /// A task whose run this stopping worker ended: its lease ends now and its id is queued
    /// again, so the next worker's claim (which counts an attempt, as after a worker's loss, and
    /// so follows a command's `on_worker_loss`) takes it at once. In a task of its own: the run's
    /// task is cancelled.
    private func handBack(_ task: TaskRecord, delivery: QueueDelivery) async throws {
        // A run can see the shutdown before this worker's drain marks it stopping (a command job
        // watches for it itself): mark it now, or the entry queued here could be claimed again by
        // this same worker, counting an attempt on the way out.
        stopping.store(true, ordering: .relaxed)
        let (tasks, queue, workerID) = (self.tasks, self.queue, settings.id)
        try await Task {
            if try await tasks.releaseLease(taskID: task.id, workerID: workerID, now: nowMilliseconds()) {
                try await queue.enqueue(taskID: task.id, model: delivery.model)
            }
            try await queue.acknowledge(delivery)
        }.value
    }

    /// One delivery: run it, dead-letter it, drop it as done, or leave it to the live worker that has it.
    /// The claim comes first: for a task that is waiting (the usual case) one statement decides,
    /// with no read before it.
    ///
    /// A first delivery that carries its task (a new chat task) does not wait for that statement:
    /// the run begins from the carried copy while the claim is on its way, so the upstream call
    /// and the claim overlap. The run's effects wait for the claim's outcome (`RunGate`); a lost
    /// claim (the task was cancelled, or is done, or another worker's) cancels the run, which leaves
    /// no trace, and the delivery is then handled as any other.
    func handle(_ delivery: QueueDelivery) async {
        // Taken over while stopping (the reclaimer runs on during the drain): not this worker's to run.
        if stopping.load(ordering: .relaxed) {
            await handBack(delivery)
            return
        }
        do {
            guard let taskID = delivery.taskID else {
                try await deadLetter(delivery, reason: "malformed entry: it names no task")
                return
            }
            let now = nowMilliseconds()
            let leaseUntil = now + settings.leaseMilliseconds
            var early: (gate: RunGate, job: Task<Void, Never>)?
            if var carried = delivery.carried, carried.id == taskID, handlers[carried.type]?.startsBeforeClaim == true {
                // As the claim will leave it, when it wins.
                carried.state = .started
                carried.workerID = settings.id
                carried.leaseUntil = leaseUntil
                carried.attempts = 1
                carried.startedAt = now
                carried.updatedAt = now
                let gate = RunGate()
                early = (gate, start(carried, delivery: delivery, gate: gate))
            }
            var claim: TaskRecord?
            if let early {
                let attempts: Int?
                do {
                    attempts = try await claimSpan(delivery) {
                        try await tasks.claimAttempts(taskID: taskID, workerID: settings.id, leaseUntil: leaseUntil, now: now)
                    }
                } catch {
                    await abandon(early)
                    throw error
                }
                // A first claim: the run already under way is this one.
                if attempts == 1 {
                    early.gate.open()
                    return
                }
                await abandon(early)
                // Claimed after earlier attempts (a task queued twice): the usual checks, on the row.
                if attempts != nil { claim = try await tasks.task(id: taskID, ownerID: nil) }
            } else {
                claim = try await claimSpan(delivery) {
                    try await tasks.claim(taskID: taskID, workerID: settings.id, leaseUntil: leaseUntil, now: now)
                }
            }
            if let claimed = claim {
                guard handlers[claimed.type] != nil else {
                    try await deadLetter(delivery, reason: "no handler for task type \(claimed.type)")
                    try await fail(claimed, error: ChorusError.internalError("no handler for task type \(claimed.type)"), state: .failure)
                    return
                }
                // `attempts` counts claims, this one included.
                if claimed.attempts > settings.maxAttempts {
                    try await deadLetter(delivery, reason: "claimed \(claimed.attempts - 1) times without finishing")
                    try await fail(claimed, error: ChorusError.internalError("the task was abandoned by \(claimed.attempts - 1) workers"), state: .failure)
                    return
                }
                start(claimed, delivery: delivery)
                return
            }
            // Not claimed: unknown, finished or cancelled (done now), or held by a live worker (whose
            // lease is valid: it acknowledges the entry when it is done).
            guard let current = try await tasks.task(id: taskID, ownerID: nil) else {
                try await deadLetter(delivery, reason: "unknown task \(taskID)")
                return
            }
            if current.state.isTerminal || current.cancelRequested {
                try await queue.acknowledge(delivery)  // a duplicate, a late redelivery, or cancelled
            }
        } catch {
            logger.error("could not handle a queue entry", metadata: ["entry": "\(delivery.entryID)", "error": "\(error)"])
        }
    }

    /// The claim's span, in the trace of the request that queued the task.
    private func claimSpan<T>(_ delivery: QueueDelivery, _ claim: () async throws -> T) async throws -> T {
        try await withSpan("task.claim", context: TraceParent.context(delivery.traceparent)) { span in
            span.attributes["chorus.task_id"] = delivery.taskID ?? ""
            span.attributes["chorus.worker"] = settings.id
            return try await claim()
        }
    }

    /// Stops a run begun before a claim that was lost, and waits until it has wound down.
    private func abandon(_ early: (gate: RunGate, job: Task<Void, Never>)) async {
        early.gate.abandon()
        early.job.cancel()
        await early.job.value
    }

    @discardableResult
    private func start(_ task: TaskRecord, delivery: QueueDelivery, gate: RunGate? = nil) -> Task<Void, Never> {
        let note = CancellationNote()
        slots.take()
        // Recorded under the lock that the job's own removal needs: a job that ends at once
        // cannot be removed before it is recorded.
        return running.withLock { running in
            let job = Task {
                // The run continues the trace of the request that queued the task (the entry's
                // `traceparent`), and every line it logs names the task.
                let context = LogContext.with(taskID: task.id, in: TraceParent.context(delivery.traceparent))
                await withSpan("task.run", context: context, ofKind: .consumer) { span in
                    span.attributes["chorus.task_id"] = task.id
                    span.attributes["chorus.task_type"] = task.type
                    span.attributes["chorus.model"] = task.model
                    span.attributes["chorus.worker"] = self.settings.id
                    span.attributes["chorus.attempt"] = task.attempts
                    await CancellationNote.$current.withValue(note) {
                        await self.execute(task, delivery: delivery, gate: gate)
                    }
                }
                self.running.withLock { $0[task.id] = nil }
                self.slots.release()
            }
            running[task.id] = RunningTask(job: job, note: note)
            return job
        }
    }

    private func execute(_ task: TaskRecord, delivery: QueueDelivery, gate: RunGate?) async {
        var logger = self.logger
        logger[metadataKey: "task_id"] = .string(task.id)
        do {
            // Events continue where an earlier (crashed) run stopped; followers are told the answer
            // restarts. A first claim has no earlier events (a task cancelled before it started is
            // never claimed), so it needs no round trip to the bus.
            let sequence = EventSequence(start: task.attempts <= 1 ? 0 : try await bus.lastSequence(taskID: task.id))
            let publisher = EventPublisher(bus: bus, patience: .milliseconds(settings.leaseMilliseconds), logger: logger)
            let emit: @Sendable (TaskEvent.Kind, String, JSONValue?) async throws -> Void = { kind, token, data in
                try await gate?.wait()
                try await publisher.publish(TaskEvent(seq: sequence.next(), taskID: task.id, kind: kind, token: token, data: data))
            }
            if sequence.current > 0 {
                try await emit(.progress, "", .object(["restarted": .bool(true), "attempt": .int(task.attempts)]))
            }
            let tasks = self.tasks
            let workerID = settings.id
            var context = TaskRunContext(task: task, emit: emit) { current, total in
                try await gate?.wait()
                try await tasks.updateProgress(taskID: task.id, workerID: workerID, current: current, total: total)
                try await emit(.progress, "", .object(["current": .int(current), "total": total.map(JSONValue.int) ?? .null]))
            }
            context.gate = gate
            let handler = handlers[task.type]!
            do {
                let result = try await handler.run(context)
                // Begun before a claim that was lost: the delivery is handled by whoever abandoned the run.
                guard await gate?.proceeds() ?? true else { return }
                // The answer is complete: record it even if this worker began to stop meanwhile
                // (which cancels this task), in a task of its own.
                try await Task {
                    if try await tasks.finish(taskID: task.id, workerID: workerID, state: .success, result: result, error: nil, now: nowMilliseconds()) {
                        try await emit(.finish, "", result)
                    }
                }.value
            } catch where error is WorkerStopping || CancellationNote.current?.reason == Self.stoppingReason {
                // Stopped by this worker's shutdown: handed back for the next worker to resume
                // (a chat answer starts again into the same message; a command runs again or
                // fails, as its `on_worker_loss` says).
                guard await gate?.proceeds() ?? true else { return }
                try await handBack(task, delivery: delivery)
                logger.info("handed the task back: this worker is stopping")
                return
            } catch let error as EventBusUnavailable {
                // Not the task's fault: leave it to its lease, so that it runs again (on any
                // worker) once the bus is back, instead of failing it for good.
                logger.error("abandoning the task run: its events cannot be published", metadata: ["error": "\(error.underlying)"])
                return
            } catch {
                guard await gate?.proceeds() ?? true else { return }
                let cancelled = Task.isCancelled || error is CancellationError
                let state: TaskState = cancelled ? .cancelled : .failure
                let failure = cancelled ? nil : error as? CommandFailure
                let chorusError = cancelled ? ChorusError.invalidRequest(message: "The task was cancelled.", param: nil, code: "cancelled") : (failure.map { .internalError($0.message) } ?? (error as? ChorusError) ?? .internalError("\(error)"))
                let body = failure?.json ?? Self.errorJSON(chorusError, state: state)
                // Record the end even though this task may be cancelled: in a task of its own.
                let finished = try await Task { try await tasks.finish(taskID: task.id, workerID: workerID, state: state, result: nil, error: body, now: nowMilliseconds()) }.value
                if finished {
                    try await Task { try await emit(.error, "", body) }.value
                }
                logger.info("task ended without success", metadata: ["state": "\(state.rawValue)", "error": "\(chorusError.message)"])
            }
            try await bus.expire(taskID: task.id, afterSeconds: settings.eventRetentionSeconds)
            try await queue.acknowledge(delivery)
        } catch {
            // Publishing or recording failed (lost the task to another worker, or the store is down):
            // leave the entry unacknowledged; the lease decides who runs it next.
            logger.error("task run could not be recorded", metadata: ["error": "\(error)"])
        }
    }

    private func fail(_ task: TaskRecord, error: ChorusError, state: TaskState) async throws {
        let body = Self.errorJSON(error, state: state)
        if try await tasks.finish(taskID: task.id, workerID: nil, state: state, result: nil, error: body, now: nowMilliseconds()) {
            let seq = try await bus.lastSequence(taskID: task.id) + 1
            try await bus.publish(TaskEvent(seq: seq, taskID: task.id, kind: .error, data: body))
            try await bus.expire(taskID: task.id, afterSeconds: settings.eventRetentionSeconds)
        }
    }

    private func deadLetter(_ delivery: QueueDelivery, reason: String) async throws {
        logger.warning("dead-lettering a queue entry", metadata: ["entry": "\(delivery.entryID)", "queue": "\(delivery.model)", "reason": "\(reason)"])
        try await tasks.recordDeadLetter(DeadLetter(
            id: Identifier.ordered("dl_"), stream: delivery.model, entryID: delivery.entryID, taskID: delivery.taskID,
            payload: delivery.payload, reason: reason, deliveries: delivery.deliveries, createdAt: nowMilliseconds()))
        try await queue.deadLetter(delivery, reason: reason)
    }

    static func errorJSON(_ error: ChorusError, state: TaskState) -> JSONValue {
        .object([
            "message": .string(error.message), "type": .string(state == .cancelled ? "cancelled" : error.type),
            "code": error.code.map(JSONValue.string) ?? .null,
        ])
    }

    // MARK: Housekeeping

    /// Renews the leases of running tasks, stops those whose cancellation was asked, and records
    /// that this worker is alive.
    private func heartbeat(startedAt: Int64) async throws {
        let ids = runningTaskIDs
        let now = nowMilliseconds()
        let cancelled = try await tasks.renewLeases(workerID: settings.id, taskIDs: ids, leaseUntil: now + settings.leaseMilliseconds)
        stopCancelled(cancelled)
        try await tasks.heartbeat(worker: WorkerRecord(
            id: settings.id, models: settings.queues, host: ProcessInfo.processInfo.hostName,
            pid: Int(ProcessInfo.processInfo.processIdentifier), startedAt: startedAt, heartbeatAt: now))
    }

    /// Stops running tasks whose cancellation was asked: the upstream call ends, the partial is
    /// saved with `reason=cancelled`, the task ends CANCELLED.
    private func stopCancelled(_ cancelled: Set<String>) {
        for id in cancelled {
            running.withLock { running in
                guard let task = running[id] else { return }
                task.note.reason = "cancelled"
                task.job.cancel()
            }
        }
    }

    /// Takes over entries that other (dead) workers were given; at start this includes this
    /// worker's own from before a restart.
    private func reclaim() async throws {
        let entries = try await queue.reclaim(models: settings.queues, consumer: settings.id, minIdleMilliseconds: settings.leaseMilliseconds, count: 100)
        for delivery in entries where delivery.taskID.map({ id in !runningTaskIDs.contains(id) }) ?? true {
            await handle(delivery)
        }
    }

    /// Queues again the tasks the database says are waiting but no queue holds (lost in a Redis
    /// failover, or an embedded restart).
    private func reconcile() async throws {
        let now = nowMilliseconds()
        let stats = Dictionary(uniqueKeysWithValues: try await queue.stats(models: settings.queues).map { ($0.model, $0) })
        let candidates = try await tasks.tasksToRequeue(enqueuedBefore: now - settings.requeueAfterMilliseconds, now: now, limit: 500)
        // A task still waiting behind others is not lost: only queues with nothing undelivered.
        let lost = candidates.filter { settings.queues.contains($0.model) && (stats[$0.model]?.lag ?? 0) == 0 }
        guard !lost.isEmpty else { return }
        for task in lost { try await queue.enqueue(taskID: task.id, model: task.model) }
        try await tasks.markEnqueued(taskIDs: lost.map(\.id), at: now)
        logger.info("re-queued tasks the queue had lost", metadata: ["count": "\(lost.count)"])
    }
}
