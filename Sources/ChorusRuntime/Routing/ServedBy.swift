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
        /// The answer matched the model's `refusal_patterns`.
        public var refused = false
    }

    private let value = Mutex<Value?>(nil)
    private let refusals = Mutex<[String]>([])

    /// Models whose answers to this turn were refusals, before this one (a task's fallbacks).
    public var refusedBy: [String] {
        get { refusals.withLock { $0 } }
        set { refusals.withLock { $0 = newValue } }
    }

    public init() {}

    public var current: Value? { value.withLock { $0 } }

    func set(_ newValue: Value) {
        value.withLock { $0 = newValue }
    }

    func markRefused() {
        value.withLock { $0?.refused = true }
    }
}
