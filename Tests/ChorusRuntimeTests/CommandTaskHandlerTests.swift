import ChorusCore
import ChorusRuntime
import ChorusStore
import Foundation
import Logging
import Synchronization
import Testing

/// The handler on a real process: no shell between the declaration and the program.
@Suite struct CommandTaskHandlerTests {
    private final class Recorder: Sendable {
        let events = Mutex<[(TaskEvent.Kind, String)]>([])
        let progress = Mutex<[(Int, Int?)]>([])
    }

    /// A handler over a fresh SQLite file; `body` runs tasks with it.
    private func withHandler<T>(
        _ commands: [CommandDeclaration], artifactMaxBytes: Int = 1 << 20,
        _ body: (_ run: @escaping @Sendable (_ command: CommandDeclaration, _ params: [String: JSONValue], _ attempts: Int, _ id: String) async throws -> (JSONValue, Recorder), _ store: SQLTaskStore, _ outputRoot: String) async throws -> T
    ) async throws -> T {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-command-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let backend = try await SQLiteBackend.open(path: folder + "/t.sqlite", logger: Self.quiet)
        _ = try await Migrator(backend: backend, logger: Self.quiet).migrate()
        let store = SQLTaskStore(backend: backend)
        let handler = CommandTaskHandler(
            commands: Dictionary(uniqueKeysWithValues: commands.map { ($0.name, $0) }), tasks: store, outputRoot: folder + "/jobs",
            artifactMaxBytes: artifactMaxBytes, logger: Self.quiet)
        let run: @Sendable (CommandDeclaration, [String: JSONValue], Int, String) async throws -> (JSONValue, Recorder) = { command, params, attempts, id in
            var fields = params
            fields["name"] = .string(command.name)
            let stored = try handler.prepare(params: .object(fields))
            let task = TaskRecord(id: id, ownerID: "u", type: "command", model: CommandTaskHandler.queueName, params: stored, attempts: attempts, createdAt: 0, updatedAt: 0)
            let recorder = Recorder()
            let context = TaskRunContext(task: task, emit: { kind, token, _ in recorder.events.withLock { $0.append((kind, token)) } }, progress: { current, total in
                recorder.progress.withLock { $0.append((current, total)) }
            })
            return (try await handler.run(context), recorder)
        }
        do {
            let result = try await body(run, store, folder + "/jobs")
            try await backend.close()
            return result
        } catch {
            try await backend.close()
            throw error
        }
    }

    private func run(_ command: CommandDeclaration, params: [String: JSONValue], attempts: Int = 1) async throws -> (JSONValue, Recorder) {
        try await withHandler([command]) { run, _, _ in try await run(command, params, attempts, "task_\(UUID().uuidString)") }
    }

    private let python = "/usr/bin/env"
    private static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test func aValueWithSpacesAndSemicolonsIsOneLiteralArgument() async throws {
        let command = CommandDeclaration(
            name: "args", argv: [python, "python3", "-c", "import json, sys; print(json.dumps({'argv': sys.argv[1:]}))", "{text}", "--n={n}"],
            params: ["text": CommandParameter(kind: .string), "n": CommandParameter(kind: .integer)])
        let (result, _) = try await run(command, params: ["text": .string("a b; echo pwned > /tmp/x && $(id)"), "n": .int(4)])
        #expect(result == .object(["argv": .array([.string("a b; echo pwned > /tmp/x && $(id)"), .string("--n=4")])]))
    }

    @Test func progressLinesEnvironmentAndTheLastJSONLine() async throws {
        let script = """
            import json, os
            print("PROGRESS 1/2", flush=True)
            print(json.dumps({"current": 2, "total": 2}), flush=True)
            print(json.dumps({"first": True}))
            print(json.dumps({"epochs": os.environ["CHORUS_PARAM_EPOCHS"], "output_empty": os.listdir(os.environ["CHORUS_TASK_OUTPUT"]) == [], "secret": os.environ.get("CHORUS_TEST_SECRET")}))
            """
        setenv("CHORUS_TEST_SECRET", "leak", 1)
        let command = CommandDeclaration(name: "p", argv: [python, "python3", "-c", script], params: ["epochs": CommandParameter(kind: .integer)])
        let (result, recorder) = try await run(command, params: ["epochs": .int(7)])
        #expect(result == .object(["epochs": .string("7"), "output_empty": .bool(true), "secret": .null]))
        let progress = recorder.progress.withLock { $0 }
        #expect(progress.map(\.0) == [1, 2])
        #expect(progress.map(\.1) == [2, 2])
        #expect(recorder.events.withLock { $0 }.filter { $0.0 == .log }.count == 4)
    }

    @Test func aNonZeroExitFailsWithTheTailOfStandardError() async throws {
        let command = CommandDeclaration(name: "f", argv: [python, "python3", "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"])
        await #expect {
            try await run(command, params: [:])
        } throws: { error in
            guard let failure = error as? CommandFailure else { return false }
            return failure.details["stderr_tail"] == .string("boom") && failure.details["exit_status"] == .object(["exit_code": .int(3)])
        }
    }

    @Test func aTimeoutStopsTheProcessGroup() async throws {
        let command = CommandDeclaration(name: "slow", argv: ["/bin/sleep", "30"], timeoutSeconds: 0.5, graceSeconds: 0.5)
        await #expect {
            try await run(command, params: [:])
        } throws: { error in
            (error as? CommandFailure)?.code == "timeout"
        }
    }

    @Test func aRunAfterTheWorkerWasLostFailsWhenDeclaredSo() async throws {
        let command = CommandDeclaration(name: "once", argv: ["/bin/true"], onWorkerLoss: .fail)
        await #expect {
            try await run(command, params: [:], attempts: 2)
        } throws: { error in
            (error as? CommandFailure)?.code == "worker_lost"
        }
        let retried = CommandDeclaration(name: "again", argv: ["/bin/true"], onWorkerLoss: .retry)
        #expect(try await run(retried, params: [:], attempts: 2).0["exit_code"] == .int(0))
    }

    /// Two runs of a command declared with `max_concurrency: 1` never overlap: each holds a lock
    /// file that the other would fail to create.
    @Test func maxConcurrencyRunsOneAtATime() async throws {
        let lock = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-lock-\(UUID().uuidString)").path
        let script = "import os, sys, time\nfd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL)\ntime.sleep(0.3)\nos.remove(sys.argv[1])"
        let command = CommandDeclaration(name: "one", argv: [python, "python3", "-c", script, lock], maxConcurrency: 1)
        try await withHandler([command]) { run, _, _ in
            async let first = run(command, [:], 1, "task_1")
            async let second = run(command, [:], 1, "task_2")
            let results = try await [first.0, second.0]
            #expect(results.allSatisfy { $0["exit_code"] == .int(0) })
        }
    }

    /// Regular files become artifacts, in name order within the size limit; a link is not followed.
    @Test func artifactsAreTheRegularFilesWithinTheLimit() async throws {
        let script = """
            import os
            out = os.environ["CHORUS_TASK_OUTPUT"]
            open(os.path.join(out, "a.json"), "w").write('{"ok": true}')
            open(os.path.join(out, "b.txt"), "w").write("x" * 100)
            os.symlink("/etc/hostname", os.path.join(out, "c-link"))
            os.mkdir(os.path.join(out, "d-folder"))
            """
        let command = CommandDeclaration(name: "files", argv: [python, "python3", "-c", script])
        try await withHandler([command], artifactMaxBytes: 50) { run, store, _ in
            let (_, recorder) = try await run(command, [:], 1, "task_1")
            let artifacts = try await store.artifacts(taskID: "task_1", ownerID: "u")
            #expect(artifacts.map(\.name) == ["a.json"])
            #expect(artifacts.first?.contentType == "application/json")
            #expect(try await store.artifact(taskID: "task_1", name: "a.json", ownerID: "u")?.content == Array(#"{"ok": true}"#.utf8))
            #expect(try await store.artifact(taskID: "task_1", name: "a.json", ownerID: "someone else") == nil)
            #expect(recorder.events.withLock { $0 }.contains { $0.1.hasPrefix("artifact b.txt (100 bytes) not kept") })
        }
    }

    @Test func aProgramThatCannotStartFailsWithItsReason() async throws {
        let command = CommandDeclaration(name: "missing", argv: ["no-such-program-\(UUID().uuidString.prefix(8))"])
        await #expect {
            try await run(command, params: [:])
        } throws: { error in
            (error as? CommandFailure)?.code == "command_error"
        }
    }

    /// A lost run's process that outlived its worker (it prints nothing, so no broken pipe ends
    /// it) is stopped when the task is claimed again on the same machine.
    @Test func aLostRunsLeftoverProcessIsStoppedOnTheNextClaim() async throws {
        let id = "task_\(UUID().uuidString)"
        let leftover = Process()
        let command = CommandDeclaration(name: "again", argv: ["/bin/true"], onWorkerLoss: .retry)
        defer { if leftover.isRunning { leftover.terminate() } }
        try await withHandler([command]) { run, _, outputRoot in
            // As the first run's process had it: the task and an output folder of this handler's.
            leftover.executableURL = URL(fileURLWithPath: "/bin/sleep")
            leftover.arguments = ["60"]
            leftover.environment = ["CHORUS_TASK_ID": id, "CHORUS_TASK_OUTPUT": "\(outputRoot)/\(id).1"]
            try leftover.run()
            _ = try await run(command, [:], 2, id)
        }
        leftover.waitUntilExit()
        #expect(leftover.terminationReason == .uncaughtSignal)
        #expect(leftover.terminationStatus == SIGKILL)
    }
}
