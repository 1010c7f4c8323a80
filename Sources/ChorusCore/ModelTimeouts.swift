/// Per-model deadlines, in seconds. Reasoning models need 300 s and more for `total`.
public struct ModelTimeouts: Sendable, Equatable {
    public var connect: Double
    public var firstToken: Double
    public var betweenTokens: Double
    public var total: Double

    public init(connect: Double = 10, firstToken: Double = 60, betweenTokens: Double = 30, total: Double = 600) {
        self.connect = connect
        self.firstToken = firstToken
        self.betweenTokens = betweenTokens
        self.total = total
    }
}
