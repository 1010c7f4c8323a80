public import ChorusCore
public import ChorusStore
import Foundation
public import Logging
import ServiceLifecycle
import Subprocess
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// `command`: runs a command the operator declared (`tasks.commands`) with the user's checked
/// parameters: never through a shell, in its own process group (its own session), with an empty
/// output folder whose files become the task's artifacts. Its output lines are `log` events; a
/// `PROGRESS c/t` line (or a JSON line with `current` and `total`) is the task's progress.
public struct CommandTaskHandler: TaskHandler {
    public let type = "command"
    /// Commands have their own queue, served by every worker, so that they never wait behind (or
    /// hold up) the `_tasks` queue's short jobs in a backlog.
    public static let queueName = "_commands"
    public var queue: String? { Self.queueName }

    let commands: [String: CommandDeclaration]
    let tasks: SQLTaskStore
    /// Where each run's output folder is made (`<data_dir>/jobs`).
    let outputRoot: String
    let artifactMaxBytes: Int
    let limits = CommandLimits()
    let logger: Logger

    public init(commands: [String: CommandDeclaration], tasks: SQLTaskStore, outputRoot: String, artifactMaxBytes: Int, logger: Logger) {
        self.commands = commands
        self.tasks = tasks
        // Absolute: a job that changes its directory still finds its folder.
        self.outputRoot = URL(fileURLWithPath: outputRoot).standardizedFileURL.path
        self.artifactMaxBytes = artifactMaxBytes
        self.logger = logger
    }

    public func validate(params: JSONValue) throws {
        _ = try prepare(params: params)
    }

    /// The declared command (404 when there is none of that name) and its checked parameters,
    /// defaults filled in: what is stored with the task.
    public func prepare(params: JSONValue) throws -> JSONValue {
        let (command, values) = try resolve(params)
        var stored = values
        stored[CommandDeclaration.nameParameter] = .string(command.name)
        return .object(stored)
    }

    private func resolve(_ params: JSONValue) throws -> (CommandDeclaration, [String: JSONValue]) {
        let fields = params.objectValue ?? [:]
        guard let nameValue = fields[CommandDeclaration.nameParameter] else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'params.name' (the declared command to run).", param: "params.name", code: "missing_required_parameter")
        }
        guard let name = nameValue.stringValue else {
            throw ChorusError.invalidRequest(message: "'params.name' must be a string.", param: "params.name", code: "invalid_type")
        }
        guard let command = commands[name] else { throw ChorusError.notFound(what: "command", id: name) }
        return (command, try command.validate(fields))
    }

    public func run(_ context: TaskRunContext) async throws -> JSONValue {
        let task = context.task
        // Checked again: the declaration may have changed since the task was queued.
        let (command, values) = try resolve(task.params)
        if task.attempts > 1 {
            // An earlier run's worker died, but its process may not have: on this machine (a
            // restarted `chorus serve`, a worker on the same host) it is stopped before the task
            // is failed or run again.
            let stopped = stopLeftovers(taskID: task.id)
            if stopped > 0 {
                logger.warning("stopped the processes of a lost run", metadata: ["task_id": "\(task.id)", "count": "\(stopped)"])
            }
        }
        if task.attempts > 1, command.onWorkerLoss == .fail {
            throw CommandFailure(
                message: "The worker running this job was lost; the command declares `on_worker_loss: fail`, so it is not run again.",
                code: "worker_lost", details: ["attempts": .int(task.attempts)])
        }
        if let limit = command.maxConcurrency, !limits.tryTake(command.name, limit: limit) {
            try await context.emit(.log, token: "waiting for one of the \(limit) slots of \(command.name)", data: .object(["stream": .string("chorus")]))
            try await interruptible(context) { try await self.limits.take(command.name, limit: limit) }
        }
        defer { if command.maxConcurrency != nil { limits.release(command.name) } }
        let output = "\(outputRoot)/\(task.id).\(task.attempts)"
        try? FileManager.default.removeItem(atPath: output)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: output) }

        let arguments = command.arguments(for: values)
        var environment = command.environment(for: values)
        // Not the worker's own environment: it holds database URLs and API keys.
        for key in ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER"] {
            if let value = ProcessInfo.processInfo.environment[key] { environment[key] = value }
        }
        environment["CHORUS_TASK_OUTPUT"] = output
        environment["CHORUS_TASK_ID"] = task.id
        environment["PYTHONUNBUFFERED"] = "1"  // progress lines as they are printed, not at exit

        let finalEnvironment = environment
        let outcome = try await interruptible(context) {
            try await self.runWithTimeout(command, arguments: arguments, environment: finalEnvironment, context: context)
        }
        let stored = try await saveArtifacts(from: output, task: task, context: context)
        switch outcome {
        case .finished(.exited(0), let lastJSON, _):
            return lastJSON ?? .object(["exit_code": .int(0), "artifacts": .int(stored)])
        case .finished(let status, _, let stderrTail):
            let how: String
            switch status {
            case .exited(let code): how = "exited with status \(code)"
            case .signaled(let signal): how = "was killed by signal \(signal)"
            }
            throw CommandFailure(
                message: "The command \(command.name) \(how).", code: "command_failed",
                details: ["stderr_tail": .string(stderrTail), "exit_status": Self.exitJSON(status)])
        case .timedOut(let seconds):
            throw CommandFailure(
                message: "The command \(command.name) ran longer than its timeout of \(CommandParameter.text(.double(seconds))) s and was stopped.",
                code: "timeout", details: [:])
        }
    }

    /// Runs `operation` until it ends or its worker begins a graceful shutdown. A job may run for
    /// hours, longer than any drain should wait: on shutdown the run is stopped (its process group
    /// torn down) and the task handed back, as if the worker had died, so that it is failed or run
    /// again by whoever claims it next, as `on_worker_loss` says.
    private func interruptible<T: Sendable>(_ context: TaskRunContext, _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await cancelWhenGracefulShutdown(operation)
        } catch {
            // The worker stops its runs itself (a cancellation noted `worker_stopping`); a run that
            // sees the shutdown first stops the same way.
            let stoppedByWorker = CancellationNote.current?.reason == TaskWorker.stoppingReason
            guard error is CancellationError, stoppedByWorker || (!Task.isCancelled && Task.isShuttingDownGracefully) else { throw error }
            // In a task of its own: this one may be cancelled.
            try? await Task {
                try await context.emit(.log, token: "the worker is stopping: this run was stopped and handed back to the next worker", data: .object(["stream": .string("chorus")]))
            }.value
            throw WorkerStopping()
        }
    }

    private static func exitJSON(_ status: TerminationStatus) -> JSONValue {
        switch status {
        case .exited(let code): .object(["exit_code": .int(Int(code))])
        case .signaled(let signal): .object(["signal": .int(Int(signal))])
        }
    }

    enum Outcome: Sendable {
        case finished(TerminationStatus, lastJSON: JSONValue?, stderrTail: String)
        case timedOut(Double)
    }

    /// Runs the command; on cancellation (the task's) or its timeout, SIGTERM to its process group,
    /// then SIGKILL after the grace period: this returns only once the process is gone.
    private func runWithTimeout(_ command: CommandDeclaration, arguments: [String], environment: [String: String], context: TaskRunContext) async throws -> Outcome {
        try await withThrowingTaskGroup(of: Outcome?.self) { group in
            group.addTask { try await self.spawn(command, arguments: arguments, environment: environment, context: context) }
            if let timeout = command.timeoutSeconds {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
                    return .timedOut(timeout)
                }
            }
            // The first to end decides; the other is cancelled (a cancelled run is torn down).
            let first = try await group.next()!
            group.cancelAll()
            while (try? await group.next()) != nil {}
            try Task.checkCancellation()
            return first!
        }
    }

    private func spawn(_ command: CommandDeclaration, arguments: [String], environment: [String: String], context: TaskRunContext) async throws -> Outcome {
        var options = PlatformOptions()
        // Its own session, so its process group holds it and its children and not this worker.
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .milliseconds(Int64(command.graceSeconds * 1000)))]
        do {
            return try await spawnUnchecked(command, arguments: arguments, environment: environment, options: options, context: context)
        } catch let error as SubprocessError {
            // The program could not be started or its output read: the declaration's problem (a
            // missing program, a line longer than 128 KiB), told to the task's owner.
            throw CommandFailure(message: "The command \(command.name) could not be run: \(error.description)", code: "command_error", details: [:])
        }
    }

    private func spawnUnchecked(_ command: CommandDeclaration, arguments: [String], environment: [String: String], options: PlatformOptions, context: TaskRunContext) async throws -> Outcome {
        let program = arguments[0]
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        var env: [Environment.Key: String] = [:]
        for (key, value) in environment { if let name = Environment.Key(rawValue: key) { env[name] = value } }
        let result = try await Subprocess.run(
            executable, arguments: Arguments(Array(arguments.dropFirst())), environment: .custom(env),
            platformOptions: options, input: .none, output: .sequence, error: .sequence
        ) { execution in
            try await withThrowingTaskGroup(of: StreamResult.self) { group in
                group.addTask {
                    var lastJSON: JSONValue?
                    for try await line in execution.standardOutput.strings() {
                        try await context.emit(.log, token: line, data: .object(["stream": .string("stdout")]))
                        if let (current, total) = Self.progress(in: line) {
                            try await context.progress(current: current, total: total)
                        } else if let json = Self.jsonObject(line) {
                            lastJSON = json
                        }
                    }
                    return .stdout(lastJSON)
                }
                group.addTask {
                    var tail: [String] = []
                    for try await line in execution.standardError.strings() {
                        try await context.emit(.log, token: line, data: .object(["stream": .string("stderr")]))
                        tail.append(line)
                        if tail.count > Self.stderrTailLines { tail.removeFirst() }
                    }
                    return .stderr(tail.joined(separator: "\n"))
                }
                var lastJSON: JSONValue?
                var tail = ""
                for try await part in group {
                    switch part {
                    case .stdout(let json): lastJSON = json
                    case .stderr(let text): tail = text
                    }
                }
                return (lastJSON, String(tail.suffix(Self.stderrTailCharacters)))
            }
        }
        return .finished(result.terminationStatus, lastJSON: result.closureResult.0, stderrTail: result.closureResult.1)
    }

    enum StreamResult: Sendable {
        case stdout(JSONValue?)
        case stderr(String)
    }

    static var stderrTailLines: Int { 20 }
    static var stderrTailCharacters: Int { 4000 }

    /// `PROGRESS 3/10` (or `PROGRESS 3`), or a JSON object with integer `current` and `total`.
    static func progress(in line: String) -> (Int, Int?)? {
        let text = line.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("PROGRESS ") {
            let parts = text.dropFirst("PROGRESS ".count).split(separator: "/", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let current = parts.first.flatMap({ Int($0) }) else { return nil }
            if parts.count == 2 {
                guard let total = Int(parts[1]) else { return nil }
                return (current, total)
            }
            return (current, nil)
        }
        if let json = jsonObject(text), let current = json["current"]?.intValue, let total = json["total"]?.intValue {
            return (current, total)
        }
        return nil
    }

    static func jsonObject(_ line: String) -> JSONValue? {
        let text = line.trimmingCharacters(in: .whitespaces)
        guard text.hasPrefix("{"), text.hasSuffix("}"), let json = try? JSONValue.parse(Array(text.utf8)), json.objectValue != nil else { return nil }
        return json
    }

    /// The regular files at the top of the output folder (links are not followed: a job cannot
    /// publish a file outside its folder), in name order, while their total stays within
    /// `tasks.artifact_max_bytes`; the others are named in a `log` event. Returns how many were stored.
    private func saveArtifacts(from folder: String, task: TaskRecord, context: TaskRunContext) async throws -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder))?.sorted() ?? []
        var artifacts: [TaskArtifact] = []
        var total = 0
        let now = nowMilliseconds()
        for name in names {
            let path = "\(folder)/\(name)"
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  attributes[.type] as? FileAttributeType == .typeRegular,
                  let size = (attributes[.size] as? NSNumber)?.intValue
            else { continue }
            guard total + size <= artifactMaxBytes, let data = FileManager.default.contents(atPath: path) else {
                try await context.emit(.log, token: "artifact \(name) (\(size) bytes) not kept: over tasks.artifact_max_bytes (\(artifactMaxBytes))", data: .object(["stream": .string("chorus")]))
                continue
            }
            total += data.count
            artifacts.append(TaskArtifact(name: name, contentType: Self.contentType(of: name), size: data.count, content: Array(data), createdAt: now))
        }
        if !artifacts.isEmpty || task.attempts > 1 {
            try await tasks.replaceArtifacts(taskID: task.id, ownerID: task.ownerID, artifacts: artifacts)
        }
        return artifacts.count
    }

    /// SIGKILLs the processes whose environment names this task and an output folder of this
    /// handler's: the one mark a run's processes keep, whatever became of their group (the output
    /// folder keeps another Chorus's processes on this machine out of it). Returns how many were
    /// signalled; none where `/proc` is absent.
    func stopLeftovers(taskID: String) -> Int {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return 0 }
        let task = Array("CHORUS_TASK_ID=\(taskID)".utf8)
        let folder = Array("CHORUS_TASK_OUTPUT=\(outputRoot)/\(taskID).".utf8)
        let me = getpid()
        var stopped = 0
        for entry in entries {
            guard let pid = Int32(entry), pid != me, let environ = FileManager.default.contents(atPath: "/proc/\(entry)/environ") else { continue }
            let variables = environ.split(separator: 0)
            if variables.contains(where: { $0.elementsEqual(task) }), variables.contains(where: { $0.starts(with: folder) }), kill(pid, SIGKILL) == 0 {
                stopped += 1
            }
        }
        return stopped
    }

    static func contentType(of name: String) -> String {
        switch (name as NSString).pathExtension.lowercased() {
        case "json": "application/json"
        case "jsonl", "ndjson": "application/x-ndjson"
        case "txt", "log": "text/plain; charset=utf-8"
        case "csv": "text/csv; charset=utf-8"
        case "md": "text/markdown; charset=utf-8"
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "gz": "application/gzip"
        case "zip": "application/zip"
        default: "application/octet-stream"
        }
    }
}

/// A run stopped because its worker is shutting down: not an end of the task, which its worker
/// hands back (to the next claim).
struct WorkerStopping: Error {}

/// A command task's own failure, shown to its owner as it is (unlike an internal error, whose
/// detail stays in the logs): the task's `error` is `{"message","type":"command_error","code"}`
/// plus `details` (the stderr tail, the exit status).
public struct CommandFailure: Error, Sendable {
    public var message: String
    public var code: String
    public var details: [String: JSONValue]

    public init(message: String, code: String, details: [String: JSONValue]) {
        self.message = message
        self.code = code
        self.details = details
    }

    public var json: JSONValue {
        var fields = details
        fields["message"] = .string(message)
        fields["type"] = .string("command_error")
        fields["code"] = .string(code)
        return .object(fields)
    }
}
