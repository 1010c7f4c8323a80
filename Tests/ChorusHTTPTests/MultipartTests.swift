import ChorusCore
import ChorusHTTP
import Testing

@Suite struct MultipartTests {
    @Test func partsWithFieldsAndBinaryFiles() throws {
        let binary: [UInt8] = [0x89, 0x50, 0x0D, 0x0A, 0x2D, 0x2D, 0x00, 0xFF]  // contains CRLF and "--"
        var body = Array("--b0undary\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nhello, world\r\n".utf8)
        body += Array("--b0undary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x.png\"\r\nContent-Type: image/png\r\n\r\n".utf8)
        body += binary + Array("\r\n--b0undary--\r\n".utf8)
        let boundary = try #require(MultipartForm.boundary(contentType: "multipart/form-data; boundary=\"b0undary\""))
        let parts = try MultipartForm.parse(body, boundary: boundary)
        #expect(parts.count == 2)
        #expect(parts[0].name == "prompt")
        #expect(parts[0].text == "hello, world")
        #expect(parts[1].filename == "x.png")
        #expect(parts[1].contentType == "image/png")
        #expect(parts[1].body == binary)
    }

    @Test func malformedBodiesAreRejected() {
        #expect(MultipartForm.boundary(contentType: "application/json") == nil)
        #expect(throws: ChorusError.self) { try MultipartForm.parse(Array("no boundary here".utf8), boundary: "b") }
        #expect(throws: ChorusError.self) { try MultipartForm.parse(Array("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nunterminated".utf8), boundary: "b") }
        #expect(throws: ChorusError.self) { try MultipartForm.parse(Array("--b\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--b--".utf8), boundary: "b") }
    }

    /// Found by fuzzing the OpenAPI document: multipart-kit traps on a header name byte above
    /// 0x7F, which took the whole server down (`POST /v1/files`, the Async-Chat form). Such a body
    /// is a 400 now; UTF-8 in header values (a browser's filename), in contents and in the
    /// preamble is still read.
    @Test func aNonASCIIHeaderNameIsRefusedNotACrash() throws {
        for name in [[0xC3, 0xA9], [0x80], [0xFF, 0x3A]] as [[UInt8]] {
            let first = Array("--b\r\n".utf8) + name + Array(": x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhi\r\n--b--\r\n".utf8)
            let second = Array("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nhi\r\n--b\r\nContent-Disposition: form-data; name=\"c\"\r\nX-".utf8)
                + name + Array(": y\r\n\r\nho\r\n--b--\r\n".utf8)
            for body in [first, second] {
                let error = #expect(throws: ChorusError.self) { try MultipartForm.parse(body, boundary: "b") }
                #expect(error?.message.contains("header name is not ASCII") == true)
            }
        }
        let fine = Array("preamble é\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"résumé.txt\"\r\n\r\ncafé\r\n--b--\r\n".utf8)
        let parts = try MultipartForm.parse(fine, boundary: "b")
        #expect(parts.map(\.filename) == ["résumé.txt"])
        #expect(parts.map(\.text) == ["café"])
    }
}

@Suite struct MultipartFilenameTests {
    private func part(_ disposition: String) throws -> FormPart {
        let body = Array("--b\r\nContent-Disposition: \(disposition)\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n".utf8)
        return try #require(try MultipartForm.parse(body, boundary: "b").first)
    }

    /// Quoted names may hold `;`, `=` and escaped quotes; `filename*` (RFC 5987) wins over `filename`.
    @Test func quotedAndExtendedFilenames() throws {
        #expect(try part(#"form-data; name="file"; filename="a;b=c.txt""#).filename == "a;b=c.txt")
        #expect(try part(#"form-data; name="file"; filename="say \"hi\".txt""#).filename == #"say "hi".txt"#)
        #expect(try part(#"form-data; name="file"; filename="plain.txt"; filename*=UTF-8''%E2%82%AC%20rates.txt"#).filename == "€ rates.txt")
        #expect(try part("form-data; name=file; filename=bare.txt").filename == "bare.txt")
        #expect(try part(#"form-data; name="file""#).filename == nil)
    }
}
