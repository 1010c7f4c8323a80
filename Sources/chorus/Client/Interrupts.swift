import Dispatch
import Foundation
import Synchronization

/// Ctrl-C in the terminal chat: it stops the answer being streamed (the program goes on); at the
/// prompt, it quits.
final class Interrupts: Sendable {
    private let current = Mutex<Task<Void, Never>?>(nil)
    /// Kept for as long as the session lives (a released source stops delivering).
    private let signals: SignalSource

    init() {
        // The signal is ignored by the process and seen here instead, so that it never kills us.
        signal(SIGINT, SIG_IGN)
        signals = SignalSource(DispatchSource.makeSignalSource(signal: SIGINT, queue: .global()))
        signals.source.setEventHandler { [self] in interrupted() }
        signals.source.resume()
    }

    private func interrupted() {
        let running = current.withLock { job -> Task<Void, Never>? in
            defer { job = nil }
            return job
        }
        if let running {
            running.cancel()
        } else {
            Terminal.write("\n")
            exit(130)
        }
    }

    /// Runs `body` as the answer that Ctrl-C stops; it returns once the answer ended or stopped.
    func answering(_ body: @escaping @Sendable () async -> Void) async {
        let job = Task { await body() }
        current.withLock { $0 = job }
        await job.value
        current.withLock { $0 = nil }
    }
}

/// A dispatch source is safe to use from any thread (Dispatch predates `Sendable`); this one is
/// only set up once and then kept.
private final class SignalSource: @unchecked Sendable {
    let source: any DispatchSourceSignal

    init(_ source: any DispatchSourceSignal) {
        self.source = source
    }
}
