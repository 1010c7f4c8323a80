import ChorusCore
import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The chat page: `GET /` and `GET /web/…`, served from the package's `Web` resources (HTML, CSS
/// and JavaScript modules, no build step). Every file is read once at start, with its ETag and a
/// gzip copy, so a request costs a dictionary lookup.
struct WebController: Sendable {
    let assets: WebAssets

    /// The page may load only its own files and talk only to this server: no inline script, no
    /// `eval`, no framing. Model output is never HTML here (the page builds DOM nodes).
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
        "connect-src 'self'", "font-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'self'",
        "frame-ancestors 'none'",
    ].joined(separator: "; ")

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/") { request, _ in try self.serve("index.html", request) }
        router.get("/web/**") { request, context in
            try self.serve(context.parameters.getCatchAll().joined(separator: "/"), request)
        }
    }

    func serve(_ path: String, _ request: Request) throws -> Response {
        guard let asset = assets.files[path] else { throw ChorusError.notFound(what: "file", id: path) }
        return Self.serve(asset, request)
    }

    /// One file with its validator: a 304 when the client has it, else gzip when it takes it.
    static func serve(_ asset: WebAssets.File, _ request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: asset.contentType, .eTag: asset.etag,
            // No hashed file names (no build step): the browser revalidates, and a 304 is cheap.
            .cacheControl: "no-cache", .vary: "Accept-Encoding",
            .contentSecurityPolicy: contentSecurityPolicy,
            HTTPField.Name("Referrer-Policy")!: "no-referrer",
        ]
        if request.headers[.ifNoneMatch]?.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == asset.etag }) == true {
            return Response(status: .notModified, headers: headers)
        }
        if let gzip = asset.gzip, acceptsGzip(request.headers[.acceptEncoding]) {
            headers[.contentEncoding] = "gzip"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: gzip))
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: asset.body))
    }

    /// `gzip` listed and not refused (`gzip;q=0`).
    static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        return header.split(separator: ",").contains { part in
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard fields.first == "gzip" || fields.first == "*" else { return false }
            return !fields.dropFirst().contains { $0 == "q=0" || $0 == "q=0.0" || $0 == "q=0.00" || $0 == "q=0.000" }
        }
    }
}

/// The page's files, read from the package resources once.
struct WebAssets: Sendable {
    struct File: Sendable {
        let contentType: String
        let etag: String
        let body: ByteBuffer
        /// Only when smaller than `body`.
        let gzip: ByteBuffer?

        /// With its ETag and, when smaller, a gzip copy.
        init(contentType: String, bytes: [UInt8]) {
            let body = ByteBuffer(bytes: bytes)
            var plain = body
            let gzip = try? plain.compress(with: .gzip())
            self.contentType = contentType
            etag = "\"" + SHA256.hex(bytes).prefix(20) + "\""
            self.body = body
            self.gzip = gzip.flatMap { $0.readableBytes < body.readableBytes ? $0 : nil }
        }
    }

    /// By path under `Web/` (`index.html`, `js/app.js`).
    let files: [String: File]

    /// Read once per process, on first use: from the package resources, or from the folder named
    /// by `CHORUS_WEB_DIR` (for working on the page without rebuilding Chorus).
    static let shared = WebAssets.load(
        from: ProcessInfo.processInfo.environment["CHORUS_WEB_DIR"].map { URL(fileURLWithPath: $0) }
            ?? Bundle.module.resourceURL?.appendingPathComponent("Web"))

    static let contentTypes = [
        "html": "text/html; charset=utf-8", "css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8",
        "svg": "image/svg+xml", "png": "image/png", "ico": "image/x-icon", "json": "application/json",
        "webmanifest": "application/manifest+json",
    ]

    /// The files under `folder` (default: this module's `Web` resources).
    static func load(from folder: URL? = Bundle.module.resourceURL?.appendingPathComponent("Web")) -> WebAssets {
        guard let folder, let enumerator = FileManager.default.enumerator(at: folder, includingPropertiesForKeys: [.isRegularFileKey]) else {
            return WebAssets(files: [:])
        }
        var files: [String: File] = [:]
        let base = folder.standardizedFileURL.path
        for case let url as URL in enumerator {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true,
                  let data = try? Data(contentsOf: url) else { continue }
            let path = String(url.standardizedFileURL.path.dropFirst(base.count + 1))
            files[path] = File(contentType: contentTypes[url.pathExtension.lowercased()] ?? "application/octet-stream", bytes: Array(data))
        }
        return WebAssets(files: files)
    }
}
