import ChorusCore
import Foundation
import MultipartKit
import NIOCore

/// One part of a `multipart/form-data` body.
public struct FormPart: Sendable, Equatable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// `multipart/form-data` (RFC 7578) bodies: multipart-kit's parser finds the parts; the
/// `Content-Disposition` parameters are read here, because multipart-kit splits them at every `;`
/// and `=` (a quoted `a;b=c.png` would break) and knows no `filename*` (RFC 5987, non-ASCII names).
/// The whole body is in memory, bounded by the request size limit before it gets here.
public enum MultipartForm {
    /// The boundary of a `Content-Type: multipart/form-data; boundary=…` header, or nil.
    public static func boundary(contentType: String) -> String? {
        let (type, parameters) = HeaderParameters.parse(contentType)
        guard type.lowercased() == "multipart/form-data", let boundary = parameters["boundary"] else { return nil }
        return boundary.isEmpty || boundary.utf8.count > 70 ? nil : boundary
    }

    public static func parse(_ body: [UInt8], boundary: String) throws -> [FormPart] {
        func bad(_ why: String) -> ChorusError {
            .invalidRequest(message: "The multipart body is malformed: \(why).", param: nil, code: "invalid_multipart")
        }
        let parser = MultipartParser(boundary: boundary)
        var parts: [FormPart] = []
        var headers: [(String, String)] = []
        var content = ByteBuffer()
        var finished = false
        parser.onHeader = { name, value in headers.append((name, value)) }
        parser.onBody = { chunk in content.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(Self.part(headers: headers, body: Array(content.readableBytesView)))
            headers = []
            content.clear()
            finished = true
        }
        // multipart-kit traps (index out of range) on a header name byte above 0x7F, which would
        // take the whole process down: such a body is refused before it gets there.
        guard headerNamesAreASCII(body, boundary: boundary) else { throw bad("a part's header name is not ASCII") }
        do {
            try parser.execute(body)
        } catch {
            throw bad("\(error)")
        }
        guard finished, let last = body.lastIndex(where: { $0 != 13 && $0 != 10 }),
              body[...last].suffix(boundary.utf8.count + 4).elementsEqual("--\(boundary)--".utf8)
        else { throw bad("it does not end with the closing boundary") }
        for part in parts where part.name.isEmpty { throw bad("a part has no name") }
        return parts
    }

    /// Whether every header name of every part (the bytes of a header line before its `:`, or the
    /// whole line without one) is ASCII. A part's headers follow a `--boundary` delimiter (the
    /// first, or one after CRLF) and its line, up to the first empty line. Header values may hold
    /// UTF-8 (a browser's `filename="…"`).
    static func headerNamesAreASCII(_ body: [UInt8], boundary: String) -> Bool {
        let delimiter = Array("--\(boundary)".utf8)
        var index = 0
        var first = true
        while let found = firstIndex(of: delimiter, in: body, from: index) {
            index = found + delimiter.count
            let atLineStart = found >= 2 && body[found - 2] == 13 && body[found - 1] == 10
            guard first || atLineStart else { continue }
            first = false
            // The closing delimiter: what follows is the epilogue, which is ignored.
            if body[index...].starts(with: [UInt8(ascii: "-"), UInt8(ascii: "-")]) { return true }
            // The rest of the delimiter's line, then one header line after another.
            guard var line = body[index...].firstIndex(of: 10).map({ $0 + 1 }) else { return true }
            while line < body.count {
                let end = body[line...].firstIndex(of: 10) ?? body.count
                let content = body[line..<end].last == 13 ? body[line..<(end - 1)] : body[line..<end]
                if content.isEmpty { break }  // the end of this part's headers
                if content.prefix(while: { $0 != UInt8(ascii: ":") }).contains(where: { $0 >= 0x80 }) { return false }
                line = end + 1
            }
            index = max(index, line)
        }
        return true
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let head = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            guard let candidate = haystack[index...(haystack.count - needle.count)].firstIndex(of: head) else { return nil }
            if haystack[candidate..<(candidate + needle.count)].elementsEqual(needle) { return candidate }
            index = candidate + 1
        }
        return nil
    }

    private static func part(headers: [(String, String)], body: [UInt8]) -> FormPart {
        var part = FormPart(name: "", filename: nil, contentType: nil, body: body)
        for (name, value) in headers {
            switch name.lowercased() {
            case "content-disposition":
                let parameters = HeaderParameters.parse(value).parameters
                part.name = parameters["name"] ?? ""
                part.filename = parameters["filename*"] ?? parameters["filename"]
            case "content-type":
                part.contentType = value.trimmingCharacters(in: .whitespaces)
            default:
                break
            }
        }
        return part
    }
}

/// The parameters of a header value such as `form-data; name="a"; filename="x;y.png"`: tokens or
/// quoted strings (with `\` escapes, `;` and `=` inside), and RFC 5987's `key*=UTF-8''%…` values
/// decoded under the key with its `*`. Keys are lowercased.
enum HeaderParameters {
    static func parse(_ value: String) -> (value: String, parameters: [String: String]) {
        var characters = Substring(value)
        let first = characters.prefix { $0 != ";" }
        characters = characters.dropFirst(first.count)
        var parameters: [String: String] = [:]
        while characters.first == ";" {
            characters = characters.dropFirst().drop { $0 == " " || $0 == "\t" }
            let key = characters.prefix { $0 != "=" && $0 != ";" }.trimmingCharacters(in: .whitespaces).lowercased()
            characters = characters.dropFirst(characters.prefix { $0 != "=" && $0 != ";" }.count)
            guard characters.first == "=" else { continue }
            characters = characters.dropFirst().drop { $0 == " " || $0 == "\t" }
            var parsed = ""
            if characters.first == "\"" {
                characters = characters.dropFirst()
                while let character = characters.first, character != "\"" {
                    characters = characters.dropFirst()
                    if character == "\\", let escaped = characters.first {
                        parsed.append(escaped)
                        characters = characters.dropFirst()
                    } else {
                        parsed.append(character)
                    }
                }
                characters = characters.dropFirst()  // the closing quote
                characters = characters.drop { $0 != ";" }
            } else {
                let token = characters.prefix { $0 != ";" }
                parsed = token.trimmingCharacters(in: .whitespaces)
                characters = characters.dropFirst(token.count)
            }
            if key.hasSuffix("*") {
                // RFC 5987: charset'language'percent-encoded; only UTF-8 is read.
                let pieces = parsed.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
                guard pieces.count == 3, pieces[0].lowercased() == "utf-8", let decoded = String(pieces[2]).removingPercentEncoding else { continue }
                parsed = decoded
            }
            if !key.isEmpty { parameters[key] = parsed }
        }
        return (first.trimmingCharacters(in: .whitespaces), parameters)
    }
}
