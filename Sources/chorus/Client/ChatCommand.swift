import ArgumentParser
import ChorusCore
import Foundation

/// `chorus chat`: a streaming chat in the terminal against a running Chorus.
struct ChatCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat", abstract: "Chat with a model of a running Chorus, streaming.",
        discussion: """
            In a terminal: answers stream as they come, thinking dimmed; Ctrl-C stops the answer, \
            Ctrl-C at the prompt (or Ctrl-D) quits. Commands: /new (a new conversation), /model NAME, \
            /history, /help, /quit.
            Piped (stdin not a terminal): each line of stdin is one question, asked in turn in one \
            conversation; only the answers are printed (one per question, no thinking, no colours). \
            The commands work there too.
            """)

    @OptionGroup var client: ClientOptions
    @Option(help: "The model (default: the only one, or chosen from /v1/models in a terminal).") var model: String?
    @Option(help: "Continue this conversation (its id, as printed after an answer).") var conversation: String?

    func run() async throws {
        let client = try client.client()
        let interactive = Terminal.stdinIsTTY
        var chosen = model
        if chosen == nil { chosen = try await Self.pickModel(client, interactive: interactive) }
        let session = ChatSession(client: client, model: chosen ?? "", conversationID: conversation, interactive: interactive)
        try await session.run()
    }

    /// The only model, or one the user picks by number.
    static func pickModel(_ client: ChorusClient, interactive: Bool) async throws -> String {
        let models = try await ChatSession.modelNames(client)
        guard !models.isEmpty else { throw ClientError("the server lists no model") }
        if models.count == 1 { return models[0] }
        guard interactive else {
            throw ValidationError("the server has several models (\(models.joined(separator: ", "))): choose one with --model")
        }
        for (index, name) in models.enumerated() { Terminal.write("  \(index + 1). \(name)\n") }
        while true {
            Terminal.write("model [1-\(models.count)]: ")
            guard let line = await ChatSession.readLine() else { throw ExitCode(0) }
            let text = line.trimmingCharacters(in: .whitespaces)
            if let number = Int(text), (1...models.count).contains(number) { return models[number - 1] }
            if models.contains(text) { return text }
        }
    }
}
