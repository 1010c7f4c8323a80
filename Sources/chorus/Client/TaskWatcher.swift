import ArgumentParser
import ChorusCore
import Foundation

/// Follows one task's events (`GET /v1/tasks/{id}/events`) and shows them; whatever the task's
/// type, only the event kinds matter: text (`answer`, `thinking`), `progress` with
/// `current`/`total` (a bar), and the end (`finish` or `error`). The stream resumes after a lost
/// connection with `Last-Event-ID`.
struct TaskWatcher {
    let client: ChorusClient
    let json: Bool
    private var bar = ProgressBar()
    private var midLine = false
    private var thinking = false
    /// Answer text was shown as it streamed (a chat task): the result is not printed again.
    private var streamedAnswer = false

    init(client: ChorusClient, json: Bool) {
        self.client = client
        self.json = json
    }

    mutating func watch(_ id: String) async throws {
        var after = 0
        var attemptsLeft = 5
        following: while true {
            do {
                let events = try await client.events(.GET, "/v1/tasks/\(escaped(id))/events", headers: after > 0 ? [("Last-Event-ID", String(after))] : [])
                for try await event in events where !event.data.isEmpty {
                    let value = try JSONValue.parse(Array(event.data.utf8))
                    after = value["seq"]?.intValue ?? after
                    try show(value)
                    if value["type"]?.stringValue == "finish" || value["type"]?.stringValue == "error" { break following }
                }
                // The stream ended without a terminal event: the server went away; resume.
            } catch let error as ClientError {
                throw error
            } catch {
                if error is CancellationError { throw error }
            }
            attemptsLeft -= 1
            guard attemptsLeft > 0 else { throw ClientError("lost the task's event stream") }
            try await Task.sleep(for: .seconds(1))
        }
        let task = try await client.get("/v1/tasks/\(escaped(id))")
        let state = task["state"]?.stringValue ?? "?"
        if json {
            try Terminal.printJSON(task)
        } else {
            endLine()
            Terminal.write("\(Terminal.bold(state))\n")
            if state == "SUCCESS", let result = task["result"], !result.isNull, !streamedAnswer {
                // A chat task's answer was printed as it streamed; other results are shown whole: a
                // text result (`content`) as text, anything else as JSON.
                let text = try result["content"]?.stringValue ?? String(decoding: result.encoded(), as: UTF8.self)
                Terminal.write(Terminal.sanitized(text) + (text.hasSuffix("\n") ? "" : "\n"))
            }
            if let error = task["error"], !error.isNull {
                Terminal.error(Terminal.red("error: \(Terminal.sanitized(error["message"]?.stringValue ?? "\(error)"))"))
            }
        }
        if state != "SUCCESS" { throw ExitCode(1) }
    }

    private mutating func show(_ event: JSONValue) throws {
        if json { return try Terminal.printJSON(event) }
        let token = Terminal.sanitized(event["token"]?.stringValue ?? "")
        switch event["type"]?.stringValue {
        case "answer":
            if thinking { endLine() }
            thinking = false
            bar.finish()
            Terminal.write(token)
            streamedAnswer = streamedAnswer || !token.isEmpty
            midLine = !token.hasSuffix("\n") && (midLine || !token.isEmpty)
        case "thinking":
            thinking = true
            bar.finish()
            Terminal.write(Terminal.dim(token))
            midLine = !token.hasSuffix("\n") && (midLine || !token.isEmpty)
        case "progress":
            let data = event["data"]
            if data?["restarted"]?.boolValue == true {
                endLine()
                // The answer starts again from its beginning.
                streamedAnswer = false
                Terminal.write(Terminal.dim("(the task restarted: attempt \(data?["attempt"]?.intValue ?? 0))") + "\n")
            }
            if let current = data?["current"]?.intValue {
                // Text in progress ends its line; the bar itself is redrawn in place.
                if midLine { Terminal.write("\n") }
                midLine = false
                bar.show(current: current, total: data?["total"]?.intValue)
            }
        default:
            break
        }
    }

    private mutating func endLine() {
        if midLine { Terminal.write("\n") }
        midLine = false
        bar.finish()
    }
}

/// A progress bar on a terminal (redrawn in place); elsewhere, one line per change.
struct ProgressBar {
    private var shown = false

    mutating func show(current: Int, total: Int?) {
        let text: String
        if let total, total > 0 {
            let width = 30
            let filled = min(width, max(0, current * width / total))
            let percent = min(100, max(0, current * 100 / total))
            text = "[\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] \(current)/\(total) \(percent)%"
        } else {
            text = "progress: \(current)"
        }
        if Terminal.stdoutIsTTY {
            Terminal.write("\r\u{1B}[2K" + text)
            shown = true
        } else {
            Terminal.write(text + "\n")
        }
    }

    /// Ends the bar's line, so that what follows starts on its own.
    mutating func finish() {
        if shown { Terminal.write("\n") }
        shown = false
    }
}
