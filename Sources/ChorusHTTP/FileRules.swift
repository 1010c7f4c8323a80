import ChorusCore
import ChorusStore
import Foundation

/// What may be uploaded, and how a stored file reaches a model.
enum FileRules {
    static let imageTypes: Set<String> = ["image/png", "image/jpeg", "image/gif", "image/webp"]
    static let textTypes: Set<String> = ["text/plain", "text/markdown", "text/csv", "application/json"]

    static func contentPart(for file: StoredFile) -> JSONValue {
        if imageTypes.contains(file.contentType) {
            let url = "data:\(file.contentType);base64,\(Data(file.content).base64EncodedString())"
            return .object(["type": .string("image_url"), "image_url": .object(["url": .string(url)])])
        }
        return .object(["type": .string("text"), "text": .string("Attached file \(file.filename):\n\(String(decoding: file.content, as: UTF8.self))")])
    }
}

extension FileRules {
    /// The declared type, checked against the bytes for images (magic numbers), or derived from
    /// the file name for text.
    static func contentType(of part: FormPart) -> String {
        let declared = part.contentType?.split(separator: ";").first.map { String($0).lowercased() } ?? ""
        if let sniffed = sniffImage(part.body) { return sniffed }
        if textTypes.contains(declared) { return declared }
        let name = (part.filename ?? "").lowercased()
        if name.hasSuffix(".md") { return "text/markdown" }
        if name.hasSuffix(".csv") { return "text/csv" }
        if name.hasSuffix(".json") { return "application/json" }
        return declared.isEmpty || declared == "application/octet-stream" ? "text/plain" : declared
    }

    static func check(_ part: FormPart, maxBytes: Int) throws {
        guard part.body.count <= maxBytes else { throw ChorusError.payloadTooLarge(limit: maxBytes) }
        guard !part.body.isEmpty else {
            throw ChorusError.invalidRequest(message: "The file '\(part.filename ?? part.name)' is empty.", param: "files", code: "empty_file")
        }
        if sniffImage(part.body) != nil { return }
        let type = contentType(of: part)
        let declared = part.contentType?.lowercased() ?? ""
        if declared.hasPrefix("image/") || imageTypes.contains(type) {
            throw ChorusError.invalidRequest(message: "The file '\(part.filename ?? "")' says it is \(declared) but is not a PNG, JPEG, GIF or WebP image.", param: "files", code: "invalid_file_type")
        }
        guard textTypes.contains(type), String(validating: part.body, as: UTF8.self) != nil else {
            throw ChorusError.invalidRequest(message: "Unsupported file type for '\(part.filename ?? "")': send an image (PNG, JPEG, GIF, WebP) or UTF-8 text (txt, md, csv, json).", param: "files", code: "invalid_file_type")
        }
    }

    static func sniffImage(_ bytes: [UInt8]) -> String? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if bytes.starts(with: Array("GIF8".utf8)) { return "image/gif" }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return "image/webp" }
        return nil
    }
}
