#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The owner of rows until accounts arrive: every row has an owner column from day one.
public let localOwnerID = "local"

/// A stored conversation.
public struct Conversation: Sendable, Equatable, Codable {
    public var id: String
    public var ownerID: String
    public var title: String?
    public var model: String?
    /// Milliseconds since 1970.
    public var createdAt: Int64
    public var updatedAt: Int64

    public init(id: String, ownerID: String, title: String?, model: String?, createdAt: Int64, updatedAt: Int64) {
        self.id = id
        self.ownerID = ownerID
        self.title = title
        self.model = model
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// Wall-clock milliseconds since 1970, the unit of every stored timestamp.
public func nowMilliseconds() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
