import ChorusCore
import ChorusProviders
import ChorusStore
import Logging
import Metrics
import Synchronization

/// Why a turn's task was cancelled, set by whoever cancels it; read when the partial is saved.
public final class CancellationNote: Sendable {
    @TaskLocal public static var current: CancellationNote?
    private let value = Mutex<String?>(nil)

    public init() {}

    public var reason: String? {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}
