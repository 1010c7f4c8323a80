import ChorusCore
import Foundation
import Synchronization

/// A model's deployments and how a call picks one: sticky to a key (a conversation) while its
/// deployment is healthy, otherwise by weight among the healthy ones with a free slot; when all
/// healthy ones are full, the call waits in a bounded queue, then gets a 429.
public final class ModelRoute: Sendable {
    public let configuration: ModelConfiguration
    public let deployments: [Deployment]
    let board: BreakerBoardSlot

    private struct Waiters {
        var nextID = 0
        /// Slots released so far: a waiter that missed one since it last looked does not sleep.
        var releases = 0
        var queue: [(id: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let waiters = Mutex(Waiters())
    /// `refusal_patterns`, compiled once (the loader refused invalid ones).
    private let refusalPatterns: [NSRegularExpression]

    init(configuration: ModelConfiguration, deployments: [Deployment], board: BreakerBoardSlot) {
        self.configuration = configuration
        self.deployments = deployments
        self.board = board
        self.refusalPatterns = configuration.refusalPatterns.compactMap { try? NSRegularExpression(pattern: $0) }
    }

    /// Whether a finished answer's text matches one of the model's refusal patterns.
    func isRefusal(_ text: String) -> Bool {
        guard !refusalPatterns.isEmpty, !text.isEmpty else { return false }
        let range = NSRange(text.startIndex..., in: text)
        return refusalPatterns.contains { $0.firstMatch(in: text, range: range) != nil }
    }

    public var name: String { configuration.name }

    /// A slot on a deployment. `avoiding` (deployments that already failed this call) are used
    /// only when no other can take it.
    ///
    /// Throws `modelUnavailable` when no deployment is healthy, `rateLimited` when the healthy
    /// ones stayed full for `queue.max_wait_seconds` or too many calls wait already.
    func acquire(affinity: String?, avoiding: Set<Int> = []) async throws -> DeploymentLease {
        let deadline = Date.now.timeIntervalSince1970 + configuration.queue.maxWaitSeconds
        while true {
            let now = Date.now.timeIntervalSince1970
            let releasesSeen = waiters.withLock { $0.releases }
            for deployment in order(affinity: affinity, avoiding: avoiding) where deployment.tryAcquire(now: now) {
                return DeploymentLease(deployment: deployment, route: self, startedAt: now)
            }
            guard deployments.contains(where: { $0.isHealthyButFull(now: now) }) else {
                throw ChorusError.modelUnavailable(
                    model: name,
                    reason: "every deployment of this model is failing; Chorus tries them again after \(Int(configuration.effectiveBreaker?.cooldownSeconds ?? 0)) s")
            }
            guard now < deadline, try await waitForSlot(until: deadline, releasesSeen: releasesSeen) else {
                let retryAfter = max(1, Int(configuration.queue.maxWaitSeconds.rounded(.up)))
                throw ChorusError.rateLimited(
                    kind: "requests", message: "Every deployment of model `\(name)` is at its concurrency limit; try again later.",
                    retryAfterSeconds: retryAfter)
            }
        }
    }

    /// Healthy deployments first, in the order a call should try them.
    private func order(affinity: String?, avoiding: Set<Int>) -> [Deployment] {
        var ranked: [(deployment: Deployment, score: Double)]
        if let affinity {
            // Weighted rendezvous hashing: every process ranks a key's deployments the same way, and
            // a deployment that leaves moves only its own keys.
            ranked = deployments.map { deployment in
                let unit = Self.unitHash(affinity + "\u{0}" + deployment.key)
                return (deployment, -deployment.settings.weight / log(unit))
            }
        } else {
            // Weighted random order (Efraimidis–Spirakis): u^(1/w), the largest first.
            ranked = deployments.map { ($0, pow(Double.random(in: Double.ulpOfOne..<1), 1 / max($0.settings.weight, .ulpOfOne))) }
        }
        ranked.sort { $0.score > $1.score }
        let sorted = ranked.map(\.deployment)
        guard !avoiding.isEmpty else { return sorted }
        return sorted.filter { !avoiding.contains($0.index) } + sorted.filter { avoiding.contains($0.index) }
    }

    /// A hash in (0, 1), stable across processes (Swift's `Hasher` is seeded per process).
    private static func unitHash(_ text: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        // FNV leaves its last bytes in the low bits: mix them up (MurmurHash3's finalizer).
        hash ^= hash >> 33
        hash &*= 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        hash &*= 0xc4ce_b9fe_1a85_ec53
        hash ^= hash >> 33
        return (Double(hash >> 11) + 0.5) / Double(1 << 53)
    }

    /// Waits until a slot is released or `deadline`; false when the queue is full.
    private func waitForSlot(until deadline: Double, releasesSeen: Int) async throws -> Bool {
        let id: Int? = waiters.withLock { state in
            guard state.queue.count < configuration.queue.maxWaiting else { return nil }
            state.nextID += 1
            return state.nextID
        }
        guard let id else { return false }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: .seconds(max(0, deadline - Date.now.timeIntervalSince1970)))
            self?.resume(id)
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let cancelled = waiters.withLock { state in
                    if Task.isCancelled || state.releases != releasesSeen { return true }
                    state.queue.append((id, continuation))
                    return false
                }
                if cancelled { continuation.resume() }  // cancelled, or a slot came free meanwhile
            }
        } onCancel: {
            resume(id)
        }
        try Task.checkCancellation()
        return true
    }

    private func resume(_ id: Int) {
        let continuation = waiters.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let index = state.queue.firstIndex(where: { $0.id == id }) else { return nil }
            return state.queue.remove(at: index).continuation
        }
        continuation?.resume()
    }

    /// A slot came free: the longest waiter tries again.
    func slotReleased() {
        let continuation = waiters.withLock { state in
            state.releases &+= 1
            return state.queue.isEmpty ? nil : state.queue.removeFirst().continuation
        }
        continuation?.resume()
    }
}

/// A call's slot on a deployment; released exactly once with how the call went.
struct DeploymentLease: Sendable {
    let deployment: Deployment
    let route: ModelRoute
    let startedAt: Double

    func release(_ outcome: Deployment.Outcome) {
        let now = Date.now.timeIntervalSince1970
        if let change = deployment.release(outcome, seconds: now - startedAt, now: now) {
            route.board.board?.publish(change, for: deployment)
        }
        route.slotReleased()
    }
}

/// Where routes find the breaker board; set once the shape has one (after Redis is connected).
final class BreakerBoardSlot: Sendable {
    private let value = Mutex<(any BreakerBoard)?>(nil)
    var board: (any BreakerBoard)? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
