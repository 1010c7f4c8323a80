import ChorusCore
import ChorusStore
import Hummingbird

/// A queue entry given up on: `GET /v1/admin/dead-letters` lists them; `GET …/{id}` adds the
/// task it names as it is now (its state and error), or null.
struct DeadLetterObject: ResponseEncodable, Sendable {
    let object = "dead_letter"
    var id: String
    var queue: String
    var entryID: String
    @Nullable var taskID: String?
    /// The queue entry as it was.
    var payload: String
    /// Why it was given up on.
    var reason: String
    var deliveries: Int
    var createdAt: Int64
    /// Only in the detail view (`TaskService.render`), null when the entry named no known task.
    var task: Nullable<JSONValue>?

    init(_ letter: DeadLetter, task: Nullable<JSONValue>? = nil) {
        id = letter.id
        queue = letter.stream
        entryID = letter.entryID
        taskID = letter.taskID
        payload = letter.payload
        reason = letter.reason
        deliveries = letter.deliveries
        createdAt = letter.createdAt / 1000
        self.task = task
    }

    enum CodingKeys: String, CodingKey {
        case object, id, queue, entryID = "entry_id", taskID = "task_id", payload, reason, deliveries, createdAt = "created_at", task
    }
}

/// `POST /v1/admin/dead-letters/{id}/replay`: the dead letter (now deleted) and its task, queued again.
struct DeadLetterReplayed: ResponseEncodable, Sendable {
    let object = "dead_letter.replayed"
    var id: String
    var task: JSONValue
}

/// `DELETE /v1/admin/dead-letters/{id}` (one) and `DELETE /v1/admin/dead-letters?all=true` (purge).
struct DeadLettersDeleted: ResponseEncodable, Sendable {
    let object = "dead_letter.deleted"
    @Nullable var id: String?
    var deleted: Int
}
