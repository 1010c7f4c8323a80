import ArgumentParser
import ChorusCore
import Foundation
import Synchronization

/// One terminal chat: the model, the conversation so far (by id: Chorus keeps its history), the
/// prompt loop and the streaming of each answer.
final class ChatSession: Sendable {
    let client: ChorusClient
    let interactive: Bool
    private let state: Mutex<(model: String, conversationID: String?)>

    init(client: ChorusClient, model: String, conversationID: String?, interactive: Bool) {
        self.client = client
        self.interactive = interactive
        state = Mutex((model, conversationID))
    }

    var model: String { state.withLock { $0.model } }
    var conversationID: String? { state.withLock { $0.conversationID } }

    func run() async throws {
        let interrupts = interactive ? Interrupts() : nil
        if interactive {
            Terminal.write(Terminal.dim("chorus chat · model \(model)\(conversationID.map { " · conversation \($0)" } ?? "") · /help for commands, Ctrl-C stops an answer, Ctrl-C at the prompt quits") + "\n")
        }
        while true {
            if interactive { Terminal.write(Terminal.bold("\(model)> ")) }
            guard let line = await Self.readLine() else {
                if interactive { Terminal.write("\n") }
                return
            }
            let text = line.trimmingCharacters(in: .whitespaces)
            if text.isEmpty { continue }
            if text.hasPrefix("/") {
                guard try await command(text) else { return }
                continue
            }
            if let interrupts {
                await interrupts.answering { [self] in
                    do {
                        try await ask(text)
                    } catch is CancellationError {
                        Terminal.write(Terminal.dim(" (stopped)") + "\n")
                    } catch {
                        Terminal.write("\n")
                        Terminal.error(Terminal.red("error: \(error)"))
                    }
                }
            } else {
                // Piped: a failed question ends the run with a non-zero status.
                do {
                    try await ask(text)
                } catch {
                    Terminal.error("error: \(error)")
                    throw ExitCode(1)
                }
            }
        }
    }

    /// A slash command; false to quit.
    private func command(_ text: String) async throws -> Bool {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch words[0] {
        case "/quit", "/exit":
            return false
        case "/new":
            state.withLock { $0.conversationID = nil }
            note("new conversation")
        case "/model":
            let models = try? await Self.modelNames(client)
            guard words.count > 1 else {
                note("model \(model)" + (models.map { "; available: \($0.joined(separator: ", "))" } ?? ""))
                return true
            }
            if let models, !models.contains(words[1]) {
                problem("no model \(words[1]); available: \(models.joined(separator: ", "))")
            } else {
                state.withLock { $0.model = words[1] }
                note("model \(words[1])")
            }
        case "/history":
            guard let conversationID else {
                note("no conversation yet")
                return true
            }
            do {
                try await showHistory(conversationID)
            } catch {
                problem("\(error)")
            }
        case "/help":
            note("/new: a new conversation · /model NAME: switch model · /history: this conversation · /quit · Ctrl-C stops an answer")
        default:
            problem("unknown command \(words[0]) (/help lists them)")
        }
        return true
    }

    private func note(_ text: String) {
        if interactive { Terminal.write(Terminal.dim("(\(text))") + "\n") } else { Terminal.error("(\(text))") }
    }

    private func problem(_ text: String) {
        Terminal.error(interactive ? Terminal.red(text) : text)
    }

    /// Streams one answer. Chorus stores the turn; the next question names the conversation.
    private func ask(_ text: String) async throws {
        let (model, conversationID) = state.withLock { ($0.model, $0.conversationID) }
        var body: [String: JSONValue] = [
            "model": .string(model), "stream": .bool(true),
            "messages": .array([.object(["role": .string("user"), "content": .string(text)])]),
        ]
        if let conversationID { body["conversation_id"] = .string(conversationID) }
        var thinking = false
        var wroteAnswer = false
        var newConversation: String?
        defer {
            // Kept even when the answer was stopped: the partial answer is in that conversation.
            if let newConversation { state.withLock { $0.conversationID = newConversation } }
        }
        let events = try await client.events(.POST, "/v1/chat/completions", body: .object(body))
        for try await event in events {
            if event.data == "[DONE]" { break }
            guard let chunk = try? JSONValue.parse(Array(event.data.utf8)) else { continue }
            if let error = chunk["error"] {
                throw ClientError(error["message"]?.stringValue ?? "the answer failed")
            }
            if conversationID == nil, newConversation == nil, let id = chunk["conversation_id"]?.stringValue { newConversation = id }
            guard let delta = chunk["choices"]?.arrayValue?.first?["delta"] else { continue }
            if let reasoning = delta["reasoning_content"]?.stringValue, !reasoning.isEmpty, interactive {
                thinking = true
                Terminal.write(Terminal.dim(Terminal.sanitized(reasoning)))
            }
            if let content = delta["content"]?.stringValue, !content.isEmpty {
                if thinking {
                    Terminal.write("\n")
                    thinking = false
                }
                Terminal.write(Terminal.sanitized(content))
                wroteAnswer = true
            }
        }
        try Task.checkCancellation()
        Terminal.write("\n")
        if interactive, !wroteAnswer { note("no answer") }
        if interactive, conversationID == nil, let newConversation { note("conversation \(newConversation)") }
    }

    private func showHistory(_ conversationID: String) async throws {
        let history = try await client.get("/v1/conversations/\(escaped(conversationID))/history")
        for message in history["data"]?.arrayValue ?? [] {
            let role = message["role"]?.stringValue ?? "?"
            let content = message["content"]?.stringValue ?? Terminal.cell(message["content"])
            let who = role == "assistant" ? (message["model"]?.stringValue ?? "assistant") : role
            Terminal.write(Terminal.bold("\(who): ") + Terminal.sanitized(content) + "\n")
        }
    }

    static func modelNames(_ client: ChorusClient) async throws -> [String] {
        try await client.get("/v1/models")["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
    }

    /// A line of stdin, read on a thread of its own: Swift's tasks run on NIO's event loops here,
    /// which must never block.
    static func readLine() async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Swift.readLine(strippingNewline: true))
            }
        }
    }
}
