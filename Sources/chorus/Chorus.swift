import ArgumentParser
import ChorusCore
import ChorusHTTP
import ChorusProviders
import ChorusRuntime
import Foundation
import Hummingbird
import Logging

@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "A self-hosted AI chat and task backend: one streaming, OpenAI-compatible API to every model.",
        subcommands: [Serve.self, Models.self])
}

/// Options shared by the commands that read the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "The YAML configuration file (default: chorus.yaml if present, else the built-in local model).")
    var config: String?

    func load(overrides: [String: String] = [:]) async throws -> ChorusConfiguration {
        do {
            return try await ConfigurationLoader.load(path: config, overrides: overrides)
        } catch let error as ConfigurationError {
            throw ValidationError(error.description)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run Chorus embedded: one process, SQLite, the local model.")

    @OptionGroup var options: ConfigOptions
    @Option(help: "The address to listen on (overrides http.host).") var host: String?
    @Option(help: "The port to listen on; 0 picks a free one (overrides http.port).") var port: Int?

    func run() async throws {
        var overrides: [String: String] = [:]
        if let host { overrides["http.host"] = host }
        if let port { overrides["http.port"] = String(port) }
        let configuration = try await options.load(overrides: overrides)
        bootstrapLogging(configuration.logging)
        let logger = Logger(label: "chorus")
        let app = try await buildServeApplication(configuration: configuration, logger: logger) { host, port in
            // One line on stdout, for people and for scripts that started us on port 0.
            FileHandle.standardOutput.write(Data("chorus listening on http://\(host):\(port)\n".utf8))
        }
        try await app.runService()
    }
}

struct Models: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the configured models.")

    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let configuration = try await options.load()
        for model in configuration.models {
            let target = model.local.map { "gguf=\($0.modelPath)" } ?? "base_url=\(model.baseURL ?? "")"
            print("\(model.name)\tprovider=\(model.provider.rawValue)\tupstream_model=\(model.upstreamModel)\t\(target)")
        }
    }
}

/// Logging is bootstrapped once, here in the executable, never in library code.
func bootstrapLogging(_ settings: ChorusConfiguration.Logging) {
    let level = Logger.Level(rawValue: settings.level) ?? .info
    LoggingSystem.bootstrap { label in
        var handler: any LogHandler = settings.format == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
}
