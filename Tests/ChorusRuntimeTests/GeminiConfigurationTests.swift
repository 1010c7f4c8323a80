import ChorusCore
import ChorusProviders
import AsyncHTTPClient
import ChorusRuntime
import Logging
import Testing

/// `provider: gemini` on a model entry.
@Suite struct GeminiConfigurationTests {
    @Test func aGeminiModelDefaultsToGooglesAPIAndIsServedByTheGeminiProvider() async throws {
        let config = try ConfigurationLoader.parse(yaml: """
            models:
              flash:
                provider: gemini
                api_key_env: GEMINI_API_KEY
                upstream_model: gemini-2.5-flash
              near:
                provider: gemini
                base_url: http://127.0.0.1:9999/v1beta
            """)
        let flash = try #require(config.models.first { $0.name == "flash" })
        #expect(flash.provider == .gemini && flash.baseURL == "https://generativelanguage.googleapis.com/v1beta")
        #expect(flash.upstreamModel == "gemini-2.5-flash" && flash.apiKeyEnv == "GEMINI_API_KEY")
        #expect(config.models.first { $0.name == "near" }?.baseURL == "http://127.0.0.1:9999/v1beta")

        let clients = UpstreamClients(configuration: .init(), maxConnectionsPerHost: 1)
        let registry = ModelRegistry(models: config.models, clients: clients, environment: ["GEMINI_API_KEY": "secret"], logger: Logger(label: "test"))
        let provider = try #require(registry["flash"]?.route.deployments.first?.provider as? GeminiProvider)
        #expect(provider.upstreamModel == "gemini-2.5-flash" && provider.apiKey == "secret")
        try await clients.shutdown()
    }

    @Test func aGeminiBaseURLMustBeHTTP() {
        let error = #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.parse(yaml: "models:\n  g:\n    provider: gemini\n    base_url: ftp://x/v1beta\n")
        }
        #expect(error?.key == "models.g.base_url")
    }
}
