import Crypto
import Foundation

/// A Lua script with its SHA-1, for running it with `EVALSHA` and falling back to `EVAL` once per
/// server (after a restart or `SCRIPT FLUSH`). Create it once, e.g. as a `static let`.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// Lowercase hex SHA-1 of ``source``, as Redis names cached scripts.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        // Redis names a cached script by the SHA-1 of its source (a name, not a security measure).
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

extension RedisCommandSender {
    /// `EVAL script numkeys key... arg...` → the script's reply.
    public func eval(_ script: String, keys: [String] = [], arguments: [String] = []) async throws -> RESPValue {
        try await self.send(RedisCommand(["EVAL", script, String(keys.count)] + keys + arguments))
    }

    /// `EVALSHA sha1 numkeys key... arg...` → the script's reply; ``RedisError/server(_:)`` with `NOSCRIPT` when not cached.
    public func evalsha(_ sha1: String, keys: [String] = [], arguments: [String] = []) async throws -> RESPValue {
        try await self.send(RedisCommand(["EVALSHA", sha1, String(keys.count)] + keys + arguments))
    }

    /// `SCRIPT LOAD script` → its SHA-1.
    @discardableResult
    public func scriptLoad(_ script: String) async throws -> String {
        let reply = try await self.send(["SCRIPT", "LOAD", script])
        guard let sha1 = reply.string else { throw RedisError.protocolError("SCRIPT LOAD: expected a SHA-1, got \(reply)") }
        return sha1
    }

    /// Runs `script` with `EVALSHA`, and with `EVAL` (which also caches it) when the server answers `NOSCRIPT`.
    public func evaluate(_ script: RedisScript, keys: [String] = [], arguments: [String] = []) async throws -> RESPValue {
        do {
            return try await self.evalsha(script.sha1, keys: keys, arguments: arguments)
        } catch let error as RedisError where error.serverErrorCode == "NOSCRIPT" {
            return try await self.eval(script.source, keys: keys, arguments: arguments)
        }
    }
}
