import Synchronization

/// A value set once: `value()` suspends until it is set and returns at once afterwards; a later
/// `set` is ignored. What a task waits on when another one decides (a first event, a claim's
/// outcome, a service that has stopped).
public final class OneShot<Value: Sendable>: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Value, Never>])
        case set(Value)
    }
    private let state = Mutex(State.waiting([]))
    /// True once set: a later `set`, which callers may make for every event of a stream, returns
    /// without taking the lock.
    private let isSet = Atomic<Bool>(false)

    public init() {}

    /// Sets the value and wakes every waiter; false when it was already set.
    @discardableResult
    public func set(_ value: Value) -> Bool {
        if isSet.load(ordering: .acquiring) { return false }
        let waiters: [CheckedContinuation<Value, Never>]? = state.withLock { state in
            guard case .waiting(let waiters) = state else { return nil }
            state = .set(value)
            isSet.store(true, ordering: .releasing)
            return waiters
        }
        guard let waiters else { return false }
        for waiter in waiters { waiter.resume(returning: value) }
        return true
    }

    /// The value once it is set. Not cancellable: use it where the setter is sure to come.
    public func value() async -> Value {
        let known: Value? = state.withLock { state in
            if case .set(let value) = state { return value }
            return nil
        }
        if let known { return known }
        return await withCheckedContinuation { continuation in
            let known: Value? = state.withLock { state in
                switch state {
                case .waiting(let waiters):
                    state = .waiting(waiters + [continuation])
                    return nil
                case .set(let value):
                    return value
                }
            }
            if let known { continuation.resume(returning: known) }
        }
    }
}
