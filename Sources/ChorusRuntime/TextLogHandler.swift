public import Logging

/// swift-log's `StreamLogHandler` (standard error by default), writing the same lines, except that
/// its metadata is formatted when a line is written rather than every time a key is set.
///
/// `StreamLogHandler` formats all of its metadata into one string whenever a key changes, and the
/// request path sets several on every request (Hummingbird's `hb.request.*`, Chorus's
/// `request_id`), almost always to log nothing.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let stream: (any TextOutputStream & Sendable)?

    /// - Parameter stream: where lines go; standard error when `nil`.
    public init(label: String, stream: (any TextOutputStream & Sendable)? = nil, metadataProvider: Logger.MetadataProvider? = LoggingSystem.metadataProvider) {
        self.label = label
        self.stream = stream
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = stream.map { StreamLogHandler(label: label, stream: $0, metadataProvider: metadataProvider) }
            ?? StreamLogHandler.standardError(label: label, metadataProvider: metadataProvider)
        line.logLevel = logLevel
        line.metadata = metadata
        line.log(event: event)
    }
}
