/// A Lua script with its SHA-1, for running it with `EVALSHA` and falling back to `EVAL` once per
/// server (after a restart or `SCRIPT FLUSH`). Create it once, e.g. as a `static let`.
public struct RedisScript: Sendable, Hashable {
    public let source: String
    /// Lowercase hex SHA-1 of ``source``, as Redis names cached scripts.
    public let sha1: String

    public init(_ source: String) {
        self.source = source
        self.sha1 = SHA1.hexDigest(Array(source.utf8))
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

/// SHA-1 (FIPS 180-4), only to name Lua scripts the way Redis does; not for security.
enum SHA1 {
    static func hexDigest(_ message: [UInt8]) -> String {
        var h: (UInt32, UInt32, UInt32, UInt32, UInt32) = (0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0)
        var padded = message
        padded.append(0x80)
        while padded.count % 64 != 56 { padded.append(0) }
        let bitLength = UInt64(message.count) &* 8
        for shift in stride(from: 56, through: 0, by: -8) {
            padded.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift)))
        }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: padded.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + i * 4
                w[i] = UInt32(padded[b]) << 24 | UInt32(padded[b + 1]) << 16 | UInt32(padded[b + 2]) << 8 | UInt32(padded[b + 3])
            }
            for i in 16..<80 {
                w[i] = rotateLeft(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1)
            }
            var (a, b, c, d, e) = h
            for i in 0..<80 {
                let f: UInt32
                let k: UInt32
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = rotateLeft(a, 5) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = rotateLeft(b, 30)
                b = a
                a = temp
            }
            h = (h.0 &+ a, h.1 &+ b, h.2 &+ c, h.3 &+ d, h.4 &+ e)
        }
        return [h.0, h.1, h.2, h.3, h.4].map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex
        }.joined()
    }

    private static func rotateLeft(_ value: UInt32, _ count: UInt32) -> UInt32 {
        (value << count) | (value >> (32 - count))
    }
}
