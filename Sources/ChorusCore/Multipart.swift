/// One part of a `multipart/form-data` body.
public struct FormPart: Sendable, Equatable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// A strict `multipart/form-data` parser (RFC 7578): the whole body is in memory, bounded by the
/// request size limit before it gets here.
public enum MultipartForm {
    /// The boundary of a `Content-Type: multipart/form-data; boundary=…` header, or nil.
    public static func boundary(contentType: String) -> String? {
        let parts = contentType.split(separator: ";").map { $0.trimmingCharacters(in: " \t") }
        guard parts.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            if pair.count == 2, pair[0].lowercased() == "boundary" {
                let value = pair[1].trimmingCharacters(in: "\"")
                return value.isEmpty || value.count > 70 ? nil : value
            }
        }
        return nil
    }

    public static func parse(_ body: [UInt8], boundary: String) throws -> [FormPart] {
        func bad(_ why: String) -> ChorusError {
            .invalidRequest(message: "The multipart body is malformed: \(why).", param: nil, code: "invalid_multipart")
        }
        let delimiter = Array("--\(boundary)".utf8)
        guard var position = find(delimiter, in: body, from: 0) else { throw bad("no boundary") }
        var parts: [FormPart] = []
        while true {
            position += delimiter.count
            if body[position...].starts(with: Array("--".utf8)) { return parts }
            guard body[position...].starts(with: crlf) else { throw bad("a boundary line does not end with CRLF") }
            position += 2
            guard let headerEnd = find(crlf + crlf, in: body, from: position) else { throw bad("a part has no header end") }
            let headerText = String(decoding: body[position..<headerEnd], as: UTF8.self)
            let contentStart = headerEnd + 4
            guard let next = find(crlf + delimiter, in: body, from: contentStart) else { throw bad("a part is not closed by the boundary") }
            var part = FormPart(name: "", filename: nil, contentType: nil, body: Array(body[contentStart..<next]))
            for line in headerText.split(separator: "\r\n") {
                let pair = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: " \t") }
                guard pair.count == 2 else { throw bad("a header line has no colon") }
                switch pair[0].lowercased() {
                case "content-disposition":
                    for parameter in pair[1].split(separator: ";").dropFirst() {
                        let kv = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: " \t") }
                        guard kv.count == 2 else { continue }
                        let value = kv[1].hasPrefix("\"") && kv[1].hasSuffix("\"") && kv[1].count >= 2 ? String(kv[1].dropFirst().dropLast()) : kv[1]
                        if kv[0].lowercased() == "name" { part.name = value }
                        if kv[0].lowercased() == "filename" { part.filename = value }
                    }
                case "content-type":
                    part.contentType = pair[1]
                default:
                    break
                }
            }
            guard !part.name.isEmpty else { throw bad("a part has no name") }
            parts.append(part)
            position = next + 2
        }
    }

    private static let crlf: [UInt8] = [13, 10]

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count <= haystack.count - start, let first = needle.first else { return nil }
        var index = start
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String { String(self).trimmingCharacters(in: set) }
}
