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

    private func run(_ command: CommandDeclaration, params: [String: JSONValue], attempts: Int = 1) async throws -> (JSONValue, Recorder) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-command-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let backend = try await SQLiteBackend.open(path: folder + "/t.sqlite", logger: Self.quiet)
        _ = try await Migrator(backend: backend, logger: Self.quiet).migrate()
        let handler = CommandTaskHandler(
            commands: [command.name: command], tasks: SQLTaskStore(backend: backend), outputRoot: folder + "/jobs",
            artifactMaxBytes: 1 << 20, logger: Self.quiet)
        var fields = params
        fields["name"] = .string(command.name)
        let stored = try handler.prepare(params: .object(fields))
        let task = TaskRecord(id: "task_1", ownerID: "u", type: "command", model: CommandTaskHandler.queueName, params: stored, attempts: attempts, createdAt: 0, updatedAt: 0)
        let recorder = Recorder()
        let context = TaskRunContext(task: task, emit: { kind, token, _ in recorder.events.withLock { $0.append((kind, token)) } }, progress: { current, total in
            recorder.progress.withLock { $0.append((current, total)) }
        })
        do {
            let result = try await handler.run(context)
            try await backend.close()
            return (result, recorder)
        } catch {
            try await backend.close()
            throw error
        }
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
}
