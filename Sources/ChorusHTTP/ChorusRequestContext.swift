import ChorusCore
import Hummingbird
import Logging

/// The per-request context: the request id every response carries, and the owner of what the
/// request reads and writes (a single local owner until accounts arrive).
public struct ChorusRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var requestID: String
    public var ownerID: String

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.requestID = Identifier.make("req_")
        self.ownerID = localOwnerID
    }
}
