import Foundation
import Synchronization

/// Ctrl-C in the terminal chat: it stops the answer being streamed (the program goes on); at the
/// prompt, it quits.
///
/// A plain signal handler writes a byte to a pipe (all it may safely do) and a thread of ours acts
/// on it. A Dispatch signal source is not used: on Linux it needs the signal blocked in every
/// thread, and NIO's threads, started before, do not block it, so signals went missing.
final class Interrupts: Sendable {
    private let current = Mutex<Task<Void, Never>?>(nil)

    init() {
        let pipe = interruptPipe
        Thread.detachNewThread { [self] in
            var byte: UInt8 = 0
            while true {
                let count = read(pipe.read, &byte, 1)
                if count == 1 { interrupted() } else if count < 0, errno == EINTR { continue } else { return }
            }
        }
        signal(SIGINT, onInterrupt)
    }

    private func interrupted() {
        let running = current.withLock { job -> Task<Void, Never>? in
            defer { job = nil }
            return job
        }
        if let running {
            running.cancel()
        } else {
            // `_exit`: nothing is buffered (output is written unbuffered), and `exit` could wait on
            // a stdio lock that the thread blocked reading the prompt's line holds.
            Terminal.write("\n")
            _exit(130)
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

/// Made before the handler is installed (a global's first use is not safe in a signal handler).
private let interruptPipe: (read: Int32, write: Int32) = {
    var ends: [Int32] = [-1, -1]
    _ = pipe(&ends)
    return (ends[0], ends[1])
}()

private func onInterrupt(_ signal: Int32) {
    var byte: UInt8 = 1
    _ = write(interruptPipe.write, &byte, 1)
}
