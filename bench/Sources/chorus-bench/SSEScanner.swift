import NIOCore

/// Splits a byte stream into lines, across reads, without building strings. Lines longer than
/// `limit` are truncated (the bench only looks at their start and at a few keys).
struct LineScanner {
    private(set) var line: [UInt8] = []
    let limit: Int

    init(limit: Int = 4096) {
        self.limit = limit
        line.reserveCapacity(256)
    }

    /// Calls `onLine` for each complete line (without `\r\n`/`\n`).
    mutating func feed(_ buffer: ByteBuffer, _ onLine: (ArraySlice<UInt8>) -> Void) {
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            let count = bytes.count
            var index = 0
            while index < count {
                if bytes[index] == UInt8(ascii: "\n") {
                    let piece = UnsafeRawBufferPointer(rebasing: bytes[start..<index])
                    if line.isEmpty {
                        var slice = Array(piece)[...]
                        if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
                        onLine(slice)
                    } else {
                        appendBounded(piece)
                        var slice = line[...]
                        if slice.last == UInt8(ascii: "\r") { slice = slice.dropLast() }
                        onLine(slice)
                        line.removeAll(keepingCapacity: true)
                    }
                    start = index + 1
                }
                index += 1
            }
            if start < count {
                appendBounded(UnsafeRawBufferPointer(rebasing: bytes[start..<count]))
            }
        }
    }

    private mutating func appendBounded(_ bytes: UnsafeRawBufferPointer) {
        let room = limit - line.count
        guard room > 0 else { return }
        line.append(contentsOf: bytes.prefix(room))
    }
}

enum SSE {
    static let dataPrefix = Array("data:".utf8)
    static let eventPrefix = Array("event:".utf8)
    static let contentKey = Array("\"content\":".utf8)
    static let taskIDsKey = Array("\"task_ids\":[\"".utf8)

    static func hasPrefix(_ line: ArraySlice<UInt8>, _ prefix: [UInt8]) -> Bool {
        line.count >= prefix.count && line.prefix(prefix.count).elementsEqual(prefix)
    }

    /// The value after `event:` (trimmed), e.g. `answer`.
    static func eventName(_ line: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        guard hasPrefix(line, eventPrefix) else { return nil }
        return line.dropFirst(eventPrefix.count).drop(while: { $0 == UInt8(ascii: " ") })
    }

    /// Whether an OpenAI chunk line (`data: {...}`) carries a non-empty `content` delta.
    /// Robust to `"content": "x"` (spaces) and to `"content":null` / `"content":""`.
    static func carriesContent(_ line: ArraySlice<UInt8>) -> Bool {
        guard hasPrefix(line, dataPrefix), let range = firstRange(of: contentKey, in: line) else { return false }
        var index = range.upperBound
        while index < line.endIndex, line[index] == UInt8(ascii: " ") { index += 1 }
        guard index + 1 < line.endIndex, line[index] == UInt8(ascii: "\"") else { return false }
        return line[index + 1] != UInt8(ascii: "\"")
    }

    static func firstRange(of needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Range<Int>? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<(index + needle.count)].elementsEqual(needle) {
                return index..<(index + needle.count)
            }
            index += 1
        }
        return nil
    }

    /// The first id in `"task_ids":["…"` of a `/v1/batches` answer.
    static func firstTaskID(_ body: [UInt8]) -> String? {
        let slice = body[...]
        guard let range = firstRange(of: taskIDsKey, in: slice) else { return nil }
        guard let end = slice[range.upperBound...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
        return String(decoding: slice[range.upperBound..<end], as: UTF8.self)
    }
}
