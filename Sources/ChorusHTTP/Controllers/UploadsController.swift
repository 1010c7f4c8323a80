import ChorusCore
import ChorusRuntime
import ChorusStore
import Hummingbird
import NIOCore

/// Uploads: `POST /v1/files`, and the Async-Chat form (`multipart/form-data` on
/// `POST /v1/chat/completions`: `prompt`, comma-separated `model`, `files`, `gemini_concurrency`,
/// `conversation_id` → 202 with the batch).
struct UploadsController<Store: ConversationStore>: Sendable {
    let tasks: TasksController<Store>
    let maxFileBytes: Int

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.post("/v1/files", use: upload)
    }

    @Sendable func upload(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let parts = try await form(request)
        let files = parts.filter { $0.name == "file" || $0.name == "files" }
        guard !files.isEmpty else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'file'.", param: "file", code: "missing_required_parameter")
        }
        var stored: [FileObject] = []
        for part in files {
            stored.append(FileObject(try await store(part, ownerID: context.ownerID)))
        }
        // One file is answered with its object, several with a list.
        if stored.count == 1 { return try stored[0].response(from: request, context: context) }
        return try ListObject(stored).response(from: request, context: context)
    }

    /// The Async-Chat form: every named model answers the prompt as one task.
    func asyncChat(_ request: Request, body: ByteBuffer, context: ChorusRequestContext) async throws -> Response {
        let parts = try Self.parse(request, body: body)
        func field(_ name: String) -> String? {
            parts.first { $0.name == name && $0.filename == nil }.map(\.text)
        }
        guard let prompt = field("prompt"), !prompt.trimmingWhitespace.isEmpty else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'prompt'.", param: "prompt", code: "missing_required_parameter")
        }
        let models = (field("model") ?? "").split(separator: ",").map { String($0).trimmingWhitespace }.filter { !$0.isEmpty }
        guard !models.isEmpty else {
            throw ChorusError.invalidRequest(message: "Missing required parameter: 'model' (a comma-separated list).", param: "model", code: "missing_required_parameter")
        }
        var body: [String: JSONValue] = [:]
        var maxConcurrent: Int?
        if let concurrency = field("gemini_concurrency"), !concurrency.isEmpty {
            guard let value = Int(concurrency), (1...64).contains(value) else {
                throw ChorusError.invalidRequest(message: "'gemini_concurrency' must be an integer from 1 to 64.", param: "gemini_concurrency", code: "invalid_value")
            }
            body["gemini_concurrency"] = .int(value)
            maxConcurrent = value
        }
        let conversationID = field("conversation_id").flatMap { $0.isEmpty ? nil : $0 }
        // Validate everything before storing any file.
        let uploads = parts.filter { $0.name == "files" || $0.name == "file" }.filter { !($0.filename ?? "").isEmpty || !$0.body.isEmpty }
        for upload in uploads { try FileRules.check(upload, maxBytes: maxFileBytes) }
        let billing = try await tasks.admitChat(context)
        return try await tasks.idempotency.run(request, body: body.isEmpty ? ByteBuffer(bytes: Array(prompt.utf8)) : ByteBuffer(bytes: try JSONValue.object(body).encoded() + Array(prompt.utf8)), ownerID: context.ownerID) {
            var fileIDs: [String] = []
            for upload in uploads { fileIDs.append(try await store(upload, ownerID: context.ownerID).id) }
            let messages = try await tasks.attach(fileIDs: fileIDs, to: [ChatMessage(role: "user", text: prompt)], ownerID: context.ownerID)
            var submission = TaskService<Store>.BatchSubmission(ownerID: context.ownerID, models: models, messages: messages, conversationID: conversationID, body: [:])
            submission.billing = billing
            submission.maxConcurrent = maxConcurrent
            let (batch, records) = try await tasks.service.submit(submission)
            return (.accepted, TasksController<Store>.renderSubmission(batch, records))
        }
    }

    private func store(_ part: FormPart, ownerID: String) async throws -> StoredFile {
        try FileRules.check(part, maxBytes: maxFileBytes)
        let file = StoredFile(
            id: Identifier.ordered("file_"), ownerID: ownerID, filename: part.filename ?? "upload",
            contentType: FileRules.contentType(of: part), size: part.body.count, sha256: SHA256.hex(part.body),
            content: part.body, createdAt: nowMilliseconds())
        try await tasks.service.tasks.save(file: file)
        return file
    }

    private func form(_ request: Request) async throws -> [FormPart] {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: maxFileBytes * 4 + 64 * 1024)
        } catch {
            throw ChorusError.payloadTooLarge(limit: maxFileBytes * 4 + 64 * 1024)
        }
        return try Self.parse(request, body: body)
    }

    static func parse(_ request: Request, body: ByteBuffer) throws -> [FormPart] {
        guard let contentType = request.headers[.contentType], let boundary = MultipartForm.boundary(contentType: contentType) else {
            throw ChorusError.invalidRequest(message: "Expected a multipart/form-data body with a boundary.", param: nil, code: "invalid_content_type")
        }
        return try MultipartForm.parse(Array(body.readableBytesView), boundary: boundary)
    }
}

extension String {
    var trimmingWhitespace: String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
