import Synchronization

/// What the effects of a task run begun before its claim wait for: opened when the worker wins
/// the claim, abandoned when it loses it (the task was cancelled, finished, or is another worker's).
///
/// Such a run may call its upstream and read, but every effect others could see (an event, a
/// progress write, a save of the answer, the task's finish) passes `wait()` first, so an abandoned
/// run leaves no trace.
public final class RunGate: Sendable {
    private enum State {
        case waiting([CheckedContinuation<Bool, Never>])
        case resolved(Bool)
    }
    private let state = Mutex(State.waiting([]))

    init() {}

    /// The claim was won: effects go ahead.
    func open() { resolve(true) }

    /// The claim was lost: every effect waiting, or still to come, is refused.
    func abandon() { resolve(false) }

    /// Whether the run's effects may happen, once that is known. Not cancellable: the claim's
    /// outcome comes within one statement.
    func proceeds() async -> Bool {
        let known: Bool? = state.withLock { state in
            if case .resolved(let value) = state { return value }
            return nil
        }
        if let known { return known }
        return await withCheckedContinuation { continuation in
            let resolved: Bool? = state.withLock { state in
                switch state {
                case .waiting(let waiters):
                    state = .waiting(waiters + [continuation])
                    return nil
                case .resolved(let value):
                    return value
                }
            }
            if let resolved { continuation.resume(returning: resolved) }
        }
    }

    /// Returns once the claim is won; throws `RunAbandoned` when it was lost.
    func wait() async throws {
        guard await proceeds() else { throw RunAbandoned() }
    }

    private func resolve(_ value: Bool) {
        let waiters: [CheckedContinuation<Bool, Never>] = state.withLock { state in
            guard case .waiting(let waiters) = state else { return [] }
            state = .resolved(value)
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }
}

/// A run begun before its claim, whose claim was lost: it stops without effects.
struct RunAbandoned: Error {}
