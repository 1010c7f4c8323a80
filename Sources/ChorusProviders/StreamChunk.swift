import AsyncHTTPClient
import ChorusCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// The parts of a `chat.completion.chunk` (or a mid-stream error) Chorus reads.
struct StreamChunk: Decodable, Equatable {
    struct Choice: Decodable, Equatable {
        struct Delta: Decodable, Equatable {
            var content: String?
            var reasoning_content: String?
            var reasoning: String?
            var refusal: String?
            /// Relayed as they are: only their presence is looked at.
            var tool_calls: JSONValue?
        }
        var delta: Delta?
        var logprobs: JSONValue?
        var finish_reason: String?
    }
    struct UsageCounts: Decodable, Equatable {
        var prompt_tokens: Int?
        var completion_tokens: Int?
        var prompt_tokens_details: JSONValue?
        var completion_tokens_details: JSONValue?
    }
    struct ErrorDetail: Decodable, Equatable {
        var message: String?
    }
    var choices: [Choice]?
    var usage: UsageCounts?
    var error: ErrorDetail?
    var system_fingerprint: String?
    var service_tier: String?
}
