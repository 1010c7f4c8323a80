import ChorusCore
import Foundation
import Hummingbird

/// The wire formats of SkillSpace's AI routes (seed 000's `QwenChatAPI`, `QwenChatAsyncAPI` and
/// `AIChatConsumer`, seed 001's task polling), so that its front end reads Chorus unchanged.
enum SkillSpaceWire {
    /// One token message: `{"code":200,"token":"…","type":"thinking|answer|finish|error"}`, the
    /// SSE view's `data:` (keys in the view's order), and with `task_id` the consumer's message.
    static func token(_ token: String, type: String, taskID: String? = nil, meta: JSONValue? = nil) -> [UInt8] {
        var writer = JSONWriter(capacity: token.utf8.count + 64)
        writer.beginObject()
        writer.key("code")
        writer.int(200)
        writer.key("token")
        writer.string(token)
        writer.key("type")
        writer.string(type)
        if let taskID {
            writer.key("task_id")
            writer.string(taskID)
        }
        if let meta {
            writer.key("meta")
            writer.value(meta)
        }
        writer.endObject()
        return writer.bytes
    }

    /// What the seed's Celery task sends when generation fails: its text in `token`, type `error`.
    static func errorToken(_ message: String, taskID: String? = nil) -> [UInt8] {
        token("系统错误: " + message, type: "error", taskID: taskID)
    }

    /// The routes whose errors are drawn in SkillSpace's shape instead of OpenAI's.
    static func covers(path: String) -> Bool {
        let lowered = path.lowercased()
        return lowered.hasPrefix("/api/ai/") || lowered == "/api/ai" || lowered.hasPrefix("/api/tasks/") || lowered == "/api/tasks"
    }
}

/// An error in SkillSpace's shape: `code` is the HTTP status (never 200) and `message` says what
/// went wrong; `error` is the same OpenAI-shaped detail the rest of Chorus sends, for its
/// machine-readable `code` (`not_found`, `csrf_failed`, …).
struct SkillSpaceError: Encodable, Sendable {
    var code: Int
    var message: String
    var error: ErrorBody.Detail

    init(_ error: ChorusError) {
        code = error.httpStatus
        message = error.message
        self.error = error.body.error
    }

    var encoded: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }
}

/// `POST /api/ai/qwen/` with `stream: false`: the whole answer at once.
struct SkillSpaceAnswer: ResponseEncodable, Sendable {
    struct Data: Encodable, Sendable {
        var answer: String
        var thinking: String
        @Nullable var sessionID: String?
        @Nullable var conversationID: String?

        enum CodingKeys: String, CodingKey {
            case answer, thinking, sessionID = "session_id", conversationID = "conversation_id"
        }
    }

    let code = 200
    var data: Data
}

/// `POST /api/ai/qwen-async/`: `{"code":200,"data":{"task_id","celery_task_id","ws_url"}}`.
struct SkillSpaceAsyncAccepted: ResponseEncodable, Sendable {
    struct Data: Encodable, Sendable {
        var taskID: String
        /// Chorus has one id per task: the same as `task_id`, so that polling either works.
        var celeryTaskID: String
        var wsURL: String
        /// The conversation's session (the one sent, or a new one when none was).
        var sessionID: String

        enum CodingKeys: String, CodingKey {
            case taskID = "task_id", celeryTaskID = "celery_task_id", wsURL = "ws_url", sessionID = "session_id"
        }
    }

    let code = 200
    var data: Data
}

/// `POST /api/tasks/submit/`: `{"task_id"}`.
struct SkillSpaceSubmitted: ResponseEncodable, Sendable {
    var taskID: String

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id"
    }
}

/// `GET /api/tasks/status/{task_id}/`: Celery's `AsyncResult` as seed 001's view returns it.
struct SkillSpaceTaskStatus: ResponseEncodable, Sendable {
    var taskID: String
    /// Celery's state: PENDING, STARTED, PROGRESS, SUCCESS, FAILURE, or REVOKED (cancelled).
    var state: String
    /// The progress (`current`, `total`) once the task reported any, else null.
    @Nullable var meta: JSONValue?
    /// The task's result once it succeeded, else null.
    @Nullable var result: JSONValue?
    /// What went wrong, for FAILURE and REVOKED (the seed's front end shows `data.error`).
    @Nullable var error: String?

    init(_ task: TaskRecord) {
        taskID = task.id
        state = task.state == .cancelled ? "REVOKED" : task.state.rawValue
        var progress: [String: JSONValue] = [:]
        if let current = task.progressCurrent { progress["current"] = .int(current) }
        if let total = task.progressTotal { progress["total"] = .int(total) }
        meta = progress.isEmpty ? nil : .object(progress)
        result = task.state == .success ? task.result : nil
        error = task.state == .failure || task.state == .cancelled ? (task.error?["message"]?.stringValue ?? "The task failed.") : nil
    }

    enum CodingKeys: String, CodingKey {
        case taskID = "task_id", state, meta, result, error
    }
}
