import AsyncHTTPClient
import ChorusCore
import ChorusProviders
import ChorusRuntime
import ChorusStore
import FakeUpstreamKit
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import HTTPTypes
import NIOCore
import Testing

@testable import ChorusApp
@testable import ChorusHTTP

/// Embedded Chorus as `chorus serve` assembles and serves it (`EmbeddedChorus`, the real HTTP
/// server with its idle timeout and backlog), on a temporary SQLite file, against the in-process
/// fake upstream; both listen on loopback sockets.
struct Harness {
    let client: any TestClientProtocol
    let backend: any SQLBackend
    let store: SQLConversationStore
    let stats: FakeUpstreamStats
    let queue: InProcessQueue
    let bus: InProcessEventBus
    let tasks: SQLTaskStore
    let security: Security
    let usage: BufferedWriter<UsageRecord>
    /// What SIGTERM starts (`ChorusProcess` runs it; tests call `drain(logger:)` themselves).
    let drain: ShutdownDrain

    /// Write transactions of chat turns: all of the database's, less the audit log's and the
    /// usage records' batches.
    var turnWrites: Int { backend.committedWrites - security.audit.committedWrites - usage.committedWrites }
    /// What `chorus serve` was assembled from (to walk its router).
    let assembly: ChorusAssembly

    /// - Parameter configure: changes to the configuration; by default accounts are off (the
    ///   suites about accounts turn them on).
    /// - Parameters firstToken, betweenTokens: the models' deadlines. The defaults are far above
    ///   what the fake upstream takes, so a test expecting an answer does not fail when the cores
    ///   are overloaded; the tests of the deadlines set short ones.
    /// - Parameter worker: false runs no task worker (for tests that count writes).
    static func run(
        firstToken: Double = 10, betweenTokens: Double = 10, checkpointSeconds: Double = 5, worker: Bool = true,
        environment: [String: String] = [:],
        configure: @Sendable (inout ChorusConfiguration) -> Void = { $0.auth.enabled = false },
        _ body: @Sendable (Harness) async throws -> Void
    ) async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let logger = Logger(label: "test")
        let stats = FakeUpstreamStats()
        let fake = buildFakeUpstream(configuration: FakeUpstreamConfiguration(port: 0, logLevel: .warning), stats: stats)
        try await fake.test(.live) { fakeClient in
            let port = try #require(fakeClient.port)
            var configuration = ChorusConfiguration()
            configuration.dataDirectory = folder.path
            configuration.storage.sqlitePath = folder.appendingPathComponent("chorus.sqlite").path
            configuration.http.host = "127.0.0.1"
            configuration.http.port = 0
            configuration.conversations.checkpointSeconds = checkpointSeconds
            configuration.auth.bcryptCost = 4
            configuration.models = ["fake", "fake2"].map { name in
                var model = ModelConfiguration(
                    name: name, provider: .openai, baseURL: "http://127.0.0.1:\(port)/v1", apiKeyEnv: nil,
                    upstreamModel: "fake-model",
                    timeouts: ModelTimeouts(connect: 2, firstToken: firstToken, betweenTokens: betweenTokens, total: 30),
                    ownedBy: "chorus", local: nil)
                model.retries = 0
                return model
            }
            configure(&configuration)
            let chorus = try await EmbeddedChorus.open(configuration: configuration, logger: logger, environment: environment)
            try await chorus.application(runWorker: worker).test(.live) { client in
                try await body(Harness(
                    client: client, backend: chorus.backend, store: chorus.store, stats: stats, queue: chorus.queue,
                    bus: chorus.bus, tasks: chorus.assembly.tasks.tasks, security: chorus.security, usage: chorus.assembly.usage,
                    drain: chorus.assembly.drain, assembly: chorus.assembly))
            }
        }
    }

    /// Sends a chat request with `prompt` as the user message.
    func chat(_ prompt: String, stream: Bool = false, conversationID: String? = nil, model: String = "fake") async throws -> TestResponse {
        var body: [String: JSONValue] = [
            "model": .string(model), "stream": .bool(stream),
            "messages": .array([.object(["role": .string("user"), "content": .string(prompt)])]),
        ]
        if stream { body["stream_options"] = .object(["include_usage": .bool(true)]) }
        if let conversationID { body["conversation_id"] = .string(conversationID) }
        return try await post("/v1/chat/completions", body: try JSONValue.object(body).encoded())
    }

    func post(_ path: String, body: some Sequence<UInt8>, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = headers[.contentType] ?? "application/json"
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: Array(body)))
    }

    func post(_ path: String, json: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await post(path, body: Array(json.utf8), headers: headers)
    }

    /// Polls until the task ends.
    func waitForTask(_ id: String, timeout: Duration = .seconds(20)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let task = try json(try await get("/v1/tasks/\(id)"))
            if let state = task["state"]?.stringValue, ["SUCCESS", "FAILURE", "CANCELLED"].contains(state) { return task }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CancellationError()
    }

    /// The SSE events of a task: (id, payload).
    func taskEvents(_ id: String, lastEventID: String? = nil) async throws -> [(String, JSONValue)] {
        var headers: HTTPFields = [:]
        if let lastEventID { headers[HTTPField.Name("Last-Event-ID")!] = lastEventID }
        let response = try await client.execute(uri: "/v1/tasks/\(id)/events", method: .get, headers: headers)
        var parser = SSEParser()
        return try parser.feed(response.body.readableBytesView).map { ($0.id ?? "", try JSONValue.parse(Array($0.data.utf8))) }
    }

    func get(_ path: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await client.execute(uri: path, method: .get, headers: headers)
    }

    func json(_ response: TestResponse) throws -> JSONValue {
        try JSONValue.parse(response.body.readableBytesView)
    }

    /// Every `data:` payload of an SSE body.
    func events(_ response: TestResponse) throws -> [String] {
        var parser = SSEParser()
        return try parser.feed(response.body.readableBytesView).map(\.data)
    }

    func messageCount() async throws -> Int {
        try await store.conversations(ownerID: localOwnerID, limit: 1000, updatedBefore: nil).asyncReduce(0) { total, conversation in
            total + (try await store.messages(conversationID: conversation.id, ownerID: localOwnerID).count)
        }
    }

    func assistantMessages(_ conversationID: String) async throws -> [StoredMessage] {
        try await store.messages(conversationID: conversationID, ownerID: localOwnerID).filter { $0.role == "assistant" }
    }
}

extension Sequence {
    func asyncReduce<Result>(_ initial: Result, _ next: (Result, Element) async throws -> Result) async rethrows -> Result {
        var result = initial
        for element in self { result = try await next(result, element) }
        return result
    }
}

/// Waits until `condition` holds, checking every 20 ms, for at most `limit`.
func eventually(within limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
