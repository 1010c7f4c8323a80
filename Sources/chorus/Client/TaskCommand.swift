import ArgumentParser
import ChorusCore
import Foundation

/// `chorus task submit|watch|cancel`: asynchronous tasks, through the API.
struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Submit, follow and cancel asynchronous tasks.", subcommands: [Submit.self, Watch.self, Cancel.self])

    struct Submit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit a task (POST /v1/tasks) and print its id.",
            discussion: "Parameters come from --params (a JSON object) and --param NAME=VALUE (a VALUE that is JSON, like 3 or true, is sent as such, else as a string).")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The task type (for example conversation.export).") var type: String
        @Option(help: "The parameters as a JSON object.") var params: String?
        @Option(name: .customLong("param"), help: "One parameter, NAME=VALUE (repeatable).") var param: [String] = []
        @Flag(help: "Follow the task until it ends (as `chorus task watch`).") var watch = false

        func parameters() throws -> JSONValue {
            var fields: [String: JSONValue] = [:]
            if let params {
                guard let object = (try? JSONValue.parse(Array(params.utf8)))?.objectValue else {
                    throw ValidationError("--params must be a JSON object")
                }
                fields = object
            }
            for pair in param {
                guard let equals = pair.firstIndex(of: "="), equals != pair.startIndex else {
                    throw ValidationError("--param takes NAME=VALUE, not \(pair)")
                }
                let value = String(pair[pair.index(after: equals)...])
                fields[String(pair[..<equals])] = (try? JSONValue.parse(Array(value.utf8))) ?? .string(value)
            }
            return .object(fields)
        }

        func run() async throws {
            let client = try client.client()
            let task = try await client.send(.POST, "/v1/tasks", body: .object(["type": .string(type), "params": try parameters()]))
            let id = task["id"]?.stringValue ?? ""
            if output.json { try Terminal.printJSON(task) } else { Terminal.write("\(id)\n") }
            if watch {
                var watcher = TaskWatcher(client: client, json: output.json)
                try await watcher.watch(id)
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Follow a task's events until it ends; exits non-zero unless it succeeds.",
            discussion: "Answer text is printed as it streams, thinking dimmed, progress (a task in PROGRESS with current/total) as a bar; --json prints each event as a JSON line, then the task.")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The task's id.") var id: String

        func run() async throws {
            var watcher = TaskWatcher(client: try client.client(), json: output.json)
            try await watcher.watch(id)
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel a task (at once if it has not started, else its worker stops it).")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The task's id.") var id: String

        func run() async throws {
            let task = try await client.client().send(.POST, "/v1/tasks/\(escaped(id))/cancel")
            if output.json { return try Terminal.printJSON(task) }
            let state = task["state"]?.stringValue ?? "?"
            Terminal.write("\(Terminal.cell(task["id"])): \(state == "CANCELLED" ? "cancelled" : "cancellation requested (\(state))")\n")
        }
    }
}
