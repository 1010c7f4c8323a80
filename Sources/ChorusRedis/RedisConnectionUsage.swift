/// A `RedisClient`'s connections at an instant. Shared connections are multiplexed (every open
/// one is in use by whatever commands are in flight); dedicated ones are leased one caller at a time
/// (blocking reads: a worker's queue read, a gateway's event follower).
public struct RedisConnectionUsage: Sendable, Equatable {
    public var sharedOpen: Int
    public var sharedMaximum: Int
    /// Leased now (in use).
    public var dedicatedLeased: Int
    /// Leased, idle or connecting.
    public var dedicatedOpen: Int
    /// Callers waiting for a dedicated connection.
    public var dedicatedWaiting: Int
    public var dedicatedMaximum: Int
}
