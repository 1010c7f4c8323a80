/// A file a command task left in its output folder.
public struct TaskArtifact: Sendable, Equatable {
    public var name: String
    public var contentType: String
    public var size: Int
    /// Empty in listings; the bytes only when one artifact is read.
    public var content: [UInt8]
    public var createdAt: Int64

    public init(name: String, contentType: String, size: Int, content: [UInt8], createdAt: Int64) {
        self.name = name
        self.contentType = contentType
        self.size = size
        self.content = content
        self.createdAt = createdAt
    }
}
