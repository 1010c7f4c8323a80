import ArgumentParser
import ChorusCore

/// `chorus dlq list|show|replay|purge`: the dead-letter queue, through the admin API.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect, replay and purge dead letters (admin).",
        subcommands: [List.self, Show.self, Replay.self, Purge.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead letters, newest first.")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "Only this queue's (a model, or _tasks).") var queue: String?
        @Option(help: "At most this many (1 to 500).") var limit: Int?

        func run() async throws {
            var query: [String] = []
            if let queue { query.append("queue=\(escaped(queue))") }
            if let limit { query.append("limit=\(limit)") }
            let list = try await client.client().get("/v1/admin/dead-letters" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
            if output.json { return try Terminal.printJSON(list) }
            let rows = (list["data"]?.arrayValue ?? []).map { letter in
                [
                    Terminal.cell(letter["id"]), Terminal.cell(letter["queue"]), Terminal.cell(letter["task_id"]),
                    Terminal.cell(letter["deliveries"]), Terminal.time(letter["created_at"]), Terminal.cell(letter["reason"]),
                ]
            }
            Terminal.write(Terminal.table(["ID", "QUEUE", "TASK", "DELIVERIES", "CREATED", "REASON"], rows))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one dead letter: its payload, why it failed, and its task now.")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The dead letter's id.") var id: String

        func run() async throws {
            let letter = try await client.client().get("/v1/admin/dead-letters/\(escaped(id))")
            if output.json { return try Terminal.printJSON(letter) }
            var text = """
                id:          \(Terminal.cell(letter["id"]))
                queue:       \(Terminal.cell(letter["queue"]))
                entry:       \(Terminal.cell(letter["entry_id"]))
                deliveries:  \(Terminal.cell(letter["deliveries"]))
                created:     \(Terminal.time(letter["created_at"]))
                reason:      \(Terminal.cell(letter["reason"]))
                payload:     \(Terminal.cell(letter["payload"]))
                task:        \(Terminal.cell(letter["task_id"]))

                """
            if let task = letter["task"], !task.isNull {
                text += "task state:  \(Terminal.cell(task["state"]))\n"
                if let error = task["error"], !error.isNull {
                    text += "task error:  \(Terminal.cell(error["message"] ?? error))\n"
                }
            }
            Terminal.write(text)
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Queue a dead letter's task again as a fresh attempt; the dead letter is removed.")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The dead letter's id.") var id: String

        func run() async throws {
            let replayed = try await client.client().send(.POST, "/v1/admin/dead-letters/\(escaped(id))/replay")
            if output.json { return try Terminal.printJSON(replayed) }
            Terminal.write("replayed \(Terminal.cell(replayed["id"])): task \(Terminal.cell(replayed["task"]?["id"])) is \(Terminal.cell(replayed["task"]?["state"])) again\n")
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete one dead letter, or all of them (--all, or a queue's with --queue).")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The dead letter's id.") var id: String?
        @Flag(help: "Delete every dead letter.") var all = false
        @Option(help: "Delete every dead letter of this queue.") var queue: String?

        func validate() throws {
            let given = [id != nil, all, queue != nil].filter { $0 }.count
            guard given == 1 else { throw ValidationError("give one of: a dead letter's id, --all, --queue NAME") }
        }

        func run() async throws {
            let path = if let id { "/v1/admin/dead-letters/\(escaped(id))" } else if let queue { "/v1/admin/dead-letters?queue=\(escaped(queue))" } else { "/v1/admin/dead-letters?all=true" }
            let deleted = try await client.client().send(.DELETE, path)
            if output.json { return try Terminal.printJSON(deleted) }
            Terminal.write("deleted \(deleted["deleted"]?.intValue ?? 0) dead letter(s)\n")
        }
    }
}
