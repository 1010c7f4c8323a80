import ArgumentParser
import Foundation

/// Where the running Chorus is and who we are: the options of every command that talks to it.
struct ClientOptions: ParsableArguments {
    @Option(help: "The Chorus server (default: $CHORUS_URL, else http://127.0.0.1:8080).")
    var url: String?

    @Option(name: .customLong("api-key"), help: "An API key (default: $CHORUS_API_KEY).")
    var apiKey: String?

    func client() throws -> ChorusClient {
        let environment = ProcessInfo.processInfo.environment
        let base = url ?? environment["CHORUS_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "http://127.0.0.1:8080"
        guard let parsed = URL(string: base), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
            throw ValidationError("--url must be an http:// or https:// URL, not \(base)")
        }
        let key = apiKey ?? environment["CHORUS_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        return ChorusClient(baseURL: base, apiKey: key)
    }
}

/// `--json`: the server's JSON instead of a table, for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print the server's JSON (one object per line) instead of text.")
    var json = false
}
