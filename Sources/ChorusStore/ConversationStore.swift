public import ChorusCore
import Foundation
import SQLKit

/// What storage must do for conversations. The chat engine depends on this, not on SQL.
public protocol ConversationStore: Sendable {
    /// Commits the turn's new messages before any model is called, creating the conversation when
    /// `conversationID` is nil. One write. Throws `ChorusError.notFound` for another owner's or an
    /// unknown conversation, with nothing written.
    func startTurn(_ turn: TurnStart) async throws -> Conversation
    /// `startTurn` and the batch of tasks that will answer it, in the same single write: a queued
    /// turn costs one commit at submission. `makeTasks` gets the (possibly new) conversation.
    func startBatch(
        _ turn: TurnStart, makeTasks: @escaping @Sendable (Conversation) -> (BatchRecord, [TaskRecord])
    ) async throws -> (Conversation, BatchRecord, [TaskRecord])
    /// Creates `conversation` unless a row with its id exists already (whoever owns it): one
    /// write, safe when two first uses race. For conversations named by the caller (SkillSpace's
    /// `session_id`), created on first use.
    func ensureConversation(_ conversation: Conversation) async throws
    /// The last `limit` messages, oldest first.
    func history(conversationID: String, ownerID: String, limit: Int) async throws -> [StoredMessage]
    /// Inserts or updates (checkpoint → final) the turn's assistant message: one row per message id.
    func saveAssistantMessage(_ message: StoredMessage) async throws
    /// Newest first; `titleContains` keeps those whose title contains it, ignoring case.
    func conversations(ownerID: String, limit: Int, updatedBefore: Int64?, titleContains: String?) async throws -> [Conversation]
    /// `ownerID` nil: whoever owns it (administrators with `admin:data`).
    func conversation(id: String, ownerID: String?) async throws -> Conversation?
    func messages(conversationID: String, ownerID: String?) async throws -> [StoredMessage]
    func renameConversation(id: String, ownerID: String?, title: String?) async throws -> Conversation?
    func deleteConversation(id: String, ownerID: String?) async throws -> Bool
}

/// The new messages of a turn.
public struct TurnStart: Sendable {
    public var ownerID: String
    /// An existing conversation, or nil to create `newConversationID`.
    public var conversationID: String?
    public var newConversationID: String
    public var title: String?
    public var model: String
    public var messages: [StoredMessage]
    public var now: Int64

    public init(ownerID: String, conversationID: String?, newConversationID: String, title: String?, model: String, messages: [StoredMessage], now: Int64) {
        self.ownerID = ownerID
        self.conversationID = conversationID
        self.newConversationID = newConversationID
        self.title = title
        self.model = model
        self.messages = messages
        self.now = now
    }
}

extension ConversationStore {
    public func conversations(ownerID: String, limit: Int, updatedBefore: Int64?) async throws -> [Conversation] {
        try await conversations(ownerID: ownerID, limit: limit, updatedBefore: updatedBefore, titleContains: nil)
    }
}
