import ChorusCore
import Hummingbird

/// A task as `TaskService.render` draws it: the object its submission answered.
struct TaskObject: ResponseEncodable, Sendable {
    /// `TaskService.render(task)`.
    var json: JSONValue

    func encode(to encoder: any Encoder) throws {
        try json.encode(to: encoder)
    }
}

/// `GET /v1/batches/{id}`: the batch and its tasks.
struct BatchObject: ResponseEncodable, Sendable {
    let object = "batch"
    var id: String
    var conversationID: String
    /// `completed` once every task has ended, else `in_progress`.
    var status: String
    var createdAt: Int64
    var tasks: [TaskObject]

    enum CodingKeys: String, CodingKey {
        case object, id, conversationID = "conversation_id", status, createdAt = "created_at", tasks
    }
}
