import ArgumentParser
import ChorusCore
import Foundation

/// `chorus key create|list|revoke`: the caller's own API keys, through the API.
struct KeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Manage your API keys on a running Chorus.", subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key and print its secret (shown once).")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Option(help: "A name for the key.") var name = "cli"
        @Option(help: "Comma-separated permissions narrowing the key (default: all of yours).") var scopes: String?
        @Option(name: .customLong("expires-in"), help: "Seconds until the key expires.") var expiresIn: Int?
        @Option(name: .customLong("token-budget"), help: "Tokens the key may spend.") var tokenBudget: Int?

        func run() async throws {
            var body: [String: JSONValue] = ["name": .string(name)]
            if let scopes {
                body["scopes"] = .array(scopes.split(separator: ",").map { .string($0.trimmingCharacters(in: .whitespaces)) })
            }
            if let expiresIn { body["expires_in"] = .int(expiresIn) }
            if let tokenBudget { body["token_budget"] = .int(tokenBudget) }
            let key = try await client.client().send(.POST, "/v1/api-keys", body: .object(body))
            if output.json { return try Terminal.printJSON(key) }
            Terminal.write("created key \(Terminal.cell(key["id"])) (\(Terminal.cell(key["name"])))\n")
            Terminal.write("\(key["key"]?.stringValue ?? "")\n")
            Terminal.error("the secret above is shown once: keep it now")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your API keys.")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let list = try await client.client().get("/v1/api-keys")
            if output.json { return try Terminal.printJSON(list) }
            let rows = (list["data"]?.arrayValue ?? []).map { key in
                [
                    Terminal.cell(key["id"]), Terminal.cell(key["name"]), Terminal.cell(key["prefix"]),
                    key["scopes"]?.arrayValue.map { $0.compactMap(\.stringValue).joined(separator: ",") } ?? "all",
                    Terminal.time(key["created_at"]), Terminal.time(key["last_used_at"]),
                    key["revoked_at"]?.intValue != nil ? "revoked" : (key["expires_at"]?.intValue).map { _ in "expires \(Terminal.time(key["expires_at"]))" } ?? "active",
                ]
            }
            Terminal.write(Terminal.table(["ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "STATUS"], rows))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an API key.")

        @OptionGroup var client: ClientOptions
        @OptionGroup var output: OutputOptions
        @Argument(help: "The key's id (from `chorus key list`).") var id: String

        func run() async throws {
            let key = try await client.client().send(.DELETE, "/v1/api-keys/\(escaped(id))")
            if output.json { return try Terminal.printJSON(key) }
            Terminal.write("revoked key \(Terminal.cell(key["id"])) (\(Terminal.cell(key["name"])))\n")
        }
    }
}
