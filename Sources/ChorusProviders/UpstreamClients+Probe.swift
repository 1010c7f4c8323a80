import AsyncHTTPClient
import NIOCore
import NIOHTTP1

extension UpstreamClients {
    /// Whether `url` answers a GET with a 2xx within `timeout` seconds (a deployment's health URL).
    public func probe(_ url: String, timeout: Double) async -> Bool {
        do {
            return try await withClient { client in
                let response = try await client.execute(HTTPClientRequest(url: url), deadline: .now() + .milliseconds(Int64(timeout * 1000)))
                _ = try? await response.body.collect(upTo: 64 * 1024)
                return (200..<300).contains(response.status.code)
            }
        } catch {
            return false
        }
    }
}
