import AsyncHTTPClient
import ChorusCore
import Logging
import Testing

@testable import ChorusProviders

/// A model whose server is known not to call tools gets a request with tools refused up front.
@Suite struct ToolSupportTests {
    struct Endpoint: UpstreamEndpoint {
        let callsTools: Bool?
        func baseURL(timeout: Double) async throws -> String { "http://127.0.0.1:1/v1" }
    }

    /// What llama.cpp's `/props` says, in the shapes its versions use.
    @Test func readsTheChatTemplatesCapabilities() {
        #expect(LocalModelSupervisor.supportsTools(.string("{'supports_tool_calls': False, 'supports_tools': False}")) == false)
        #expect(LocalModelSupervisor.supportsTools(.string("{'supports_tools': True, 'supports_system_role': True}")) == true)
        #expect(LocalModelSupervisor.supportsTools(.object(["supports_tools": .bool(false)])) == false)
        #expect(LocalModelSupervisor.supportsTools(nil) == nil)
    }

    @Test func toolsToAModelThatCannotCallThemAreA400() async throws {
        let clients = UpstreamClients(configuration: .init(), maxConnectionsPerHost: 1)
        func provider(_ callsTools: Bool?) -> OpenAICompatibleProvider {
            OpenAICompatibleProvider(endpoint: Endpoint(callsTools: callsTools), upstreamModel: "m", apiKey: nil, timeouts: ModelTimeouts(), clients: clients, logger: Logger(label: "test"))
        }
        let tools: JSONValue = .array([.object(["type": .string("function"), "function": .object(["name": .string("f")])])])
        let withTools = UpstreamRequest(body: ["tools": tools], requestID: "r")
        let error = #expect(throws: ChorusError.self) { try provider(false).check(withTools) }
        #expect(error?.code == "tools_not_supported" && error?.param == "tools")
        // Unknown support, no tools, or tools turned off: nothing to refuse.
        try provider(nil).check(withTools)
        try provider(true).check(withTools)
        try provider(false).check(UpstreamRequest(body: [:], requestID: "r"))
        try provider(false).check(UpstreamRequest(body: ["tools": tools, "tool_choice": .string("none")], requestID: "r"))
        try await clients.shutdown()
    }
}
