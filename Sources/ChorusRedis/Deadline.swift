/// Runs `operation`, giving up at `deadline` with the error from `timeoutError`.
///
/// When the deadline wins, `operation` is cancelled; should it still produce a value (it finished
/// at the same moment), that value goes to `lateResult` so a resource it holds is not leaked.
/// Cancelling the caller throws `CancellationError`.
func withDeadline<T: Sendable>(
    _ deadline: ContinuousClock.Instant,
    timeoutError: @escaping @Sendable () -> any Error,
    lateResult: @escaping @Sendable (T) -> Void = { _ in },
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try? await Task.sleep(until: deadline, clock: .continuous)
            return nil
        }
        if let value = try await group.next()! {
            group.cancelAll()
            return value
        }
        group.cancelAll()
        while let result = try? await group.next() {
            if let value = result { lateResult(value) }
        }
        if Task.isCancelled { throw CancellationError() }
        throw timeoutError()
    }
}
