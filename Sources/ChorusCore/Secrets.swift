import Crypto

/// Random secrets and their stored form.
public enum Secrets {
    /// `count` characters from [A-Za-z0-9], from the system's cryptographic generator.
    public static func random(_ count: Int) -> String { RandomText.make(count) }

    public static let apiKeyPrefix = "sk-chorus-"
    public static let sessionPrefix = "cs_"

    /// A new API key (about 238 bits of randomness).
    public static func newAPIKey() -> String { apiKeyPrefix + random(40) }
    /// A new session token.
    public static func newSessionToken() -> String { sessionPrefix + random(40) }

    /// How a high-entropy secret is stored and looked up: its SHA-256, hex. (Passwords use bcrypt.)
    public static func hash(_ secret: String) -> String { SHA256.hex(Array(secret.utf8)) }

    /// The CSRF token of a session: derived from the session token, so nothing more is stored, and
    /// knowing it reveals nothing about the session token.
    public static func csrfToken(forSession token: String) -> String {
        String(SHA256.hex(Array("chorus-csrf:\(token)".utf8)).prefix(40))
    }

    /// Compares in constant time: swift-crypto compares digests without an early exit, and
    /// comparing digests hides the lengths too.
    public static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        Crypto.SHA256.hash(data: Array(a.utf8)) == Crypto.SHA256.hash(data: Array(b.utf8))
    }
}
