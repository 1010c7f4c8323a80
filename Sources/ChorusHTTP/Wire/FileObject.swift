import ChorusStore
import Hummingbird

/// An uploaded file (`POST /v1/files`), without its content.
struct FileObject: ResponseEncodable, Sendable {
    let object = "file"
    var id: String
    var filename: String
    var bytes: Int
    var contentType: String
    var sha256: String
    var createdAt: Int64

    init(_ file: StoredFile) {
        id = file.id
        filename = file.filename
        bytes = file.size
        contentType = file.contentType
        sha256 = file.sha256
        createdAt = file.createdAt / 1000
    }

    enum CodingKeys: String, CodingKey {
        case object, id, filename, bytes, contentType = "content_type", sha256, createdAt = "created_at"
    }
}
