public import ChorusCore
public import ChorusStore
import Logging

/// The operator's side of the dead-letter queue: inspect, replay, delete, purge. The database
/// table is the record; the queue's own copies (Redis `dead` streams, the in-process list) follow.
extension TaskService {
    public func deadLetter(id: String) async throws -> DeadLetter {
        guard let letter = try await tasks.deadLetter(id: id) else { throw ChorusError.notFound(what: "dead letter", id: id) }
        return letter
    }

    /// Queues the dead letter's task again as a fresh attempt (its old events are dropped, so the
    /// new run's sequence starts at 1) and deletes the dead letter. Refused, changing nothing, when
    /// there is no task to restart (409).
    public func replayDeadLetter(id: String) async throws -> (DeadLetter, TaskRecord) {
        switch try await tasks.replayDeadLetter(id: id, now: nowMilliseconds()) {
        case nil:
            throw ChorusError.notFound(what: "dead letter", id: id)
        case .refused(_, let reason):
            throw ChorusError.conflict(message: reason, code: "dead_letter_not_replayable")
        case .replayed(let letter, let task):
            // The task is PENDING in the database: should any step below fail, the reconciler
            // queues it later, as any task whose queue entry was lost.
            try await bus.forget(taskID: task.id)
            await forgetQueueCopies(of: [letter])
            do {
                try await queue.enqueue(taskID: task.id, model: task.model)
            } catch {
                logger.warning("could not queue a replayed task; the reconciler will", metadata: ["task_id": "\(task.id)", "error": "\(error)"])
            }
            logger.info("dead letter replayed", metadata: ["dead_letter": "\(letter.id)", "task_id": "\(task.id)"])
            return (letter, task)
        }
    }

    public func deleteDeadLetter(id: String) async throws -> DeadLetter {
        guard let letter = try await tasks.deleteDeadLetter(id: id) else { throw ChorusError.notFound(what: "dead letter", id: id) }
        await forgetQueueCopies(of: [letter])
        return letter
    }

    /// Deletes every dead letter, or those of one queue; how many.
    public func purgeDeadLetters(queue name: String?) async throws -> Int {
        let letters = try await tasks.purgeDeadLetters(queue: name)
        await forgetQueueCopies(of: letters)
        return letters.count
    }

    /// The queue's copies are a convenience, not the record: a failure is logged, not reported.
    private func forgetQueueCopies(of letters: [DeadLetter]) async {
        for (model, some) in Dictionary(grouping: letters, by: \.stream) {
            do {
                try await queue.forgetDeadLetters(model: model, entryIDs: some.map(\.entryID))
            } catch {
                logger.warning("could not remove dead letters from their queue's dead stream", metadata: ["queue": "\(model)", "error": "\(error)"])
            }
        }
    }
}
