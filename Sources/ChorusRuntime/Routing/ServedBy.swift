import Synchronization

/// Which model and deployment answered a turn (a fallback may), and whether the cache did: set
/// by the engine as the call goes, read for the `X-Chorus-Model` / `X-Chorus-Cache` headers and
/// stored with the answer.
public final class ServedBy: Sendable {
    public struct Value: Sendable, Equatable {
        public var model: String
        /// `model/index`; nil for a cache hit.
        public var deployment: String?
        public var cacheHit = false
    }

    private let value = Mutex<Value?>(nil)

    public init() {}

    public var current: Value? { value.withLock { $0 } }

    func set(_ newValue: Value) {
        value.withLock { $0 = newValue }
    }
}
