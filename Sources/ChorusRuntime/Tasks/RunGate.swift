import ChorusCore

/// What the effects of a task run begun before its claim wait for: opened when the worker wins
/// the claim, abandoned when it loses it (the task was cancelled, finished, or is another worker's).
///
/// Such a run may call its upstream and read, but every effect others could see (an event, a
/// progress write, a save of the answer, the task's finish) passes `wait()` first, so an abandoned
/// run leaves no trace.
public final class RunGate: Sendable {
    private let outcome = OneShot<Bool>()

    init() {}

    /// The claim was won: effects go ahead.
    func open() { outcome.set(true) }

    /// The claim was lost: every effect waiting, or still to come, is refused.
    func abandon() { outcome.set(false) }

    /// Whether the run's effects may happen, once that is known. Not cancellable: the claim's
    /// outcome comes within one statement.
    func proceeds() async -> Bool {
        await outcome.value()
    }

    /// Returns once the claim is won; throws `RunAbandoned` when it was lost.
    func wait() async throws {
        guard await proceeds() else { throw RunAbandoned() }
    }
}

/// A run begun before its claim, whose claim was lost: it stops without effects.
struct RunAbandoned: Error {}
