public import Crypto

/// SHA-256 as lowercase hex, for upload digests, idempotency fingerprints, ETags and the stored
/// form of high-entropy secrets (API keys, session tokens). swift-crypto computes it.
public enum SHA256 {
    /// The digest as 64 lowercase hex digits.
    public static func hex(_ bytes: some Collection<UInt8>) -> String {
        Crypto.SHA256.hash(data: Array(bytes)).hex
    }

    public static func digest(_ bytes: some Collection<UInt8>) -> [UInt8] {
        Array(Crypto.SHA256.hash(data: Array(bytes)))
    }
}

extension Digest {
    /// Lowercase hex digits.
    public var hex: String {
        let hexDigits = Array("0123456789abcdef".utf8)
        return String(unsafeUninitializedCapacity: Self.byteCount * 2) { output in
            var index = 0
            for byte in self {
                output[index] = hexDigits[Int(byte >> 4)]
                output[index + 1] = hexDigits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }
}
