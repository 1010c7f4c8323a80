import AsyncHTTPClient
import ChorusCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Reads a `StreamChunk` from the text of one SSE event (this runs once per streamed token), with
/// `JSONFields`: the text is checked in full, but only the fields below become Swift values.
/// Mirrors what `JSONDecoder` would accept for `StreamChunk`: a missing or `null` field is `nil`,
/// a field of the wrong type (or a chunk that is not an object) throws, and of a key that appears
/// twice the last value counts.
struct StreamChunkDecoder {
    struct TypeMismatch: Error {
        var field: String
    }

    typealias Value = JSONFields.Value

    mutating func decode(_ text: String) throws -> StreamChunk {
        try JSONFields.read(text) { fields, root in
            guard root.kind == .object else { throw TypeMismatch(field: "chunk") }
            var choices, usage, error, fingerprint, tier: Value?
            try fields.members(of: root) { key, value in
                if key == "choices" {
                    choices = value
                } else if key == "usage" {
                    usage = value
                } else if key == "error" {
                    error = value
                } else if key == "system_fingerprint" {
                    fingerprint = value
                } else if key == "service_tier" {
                    tier = value
                }
            }
            var chunk = StreamChunk()
            if let choices = try Self.present(choices, .array, "choices") {
                var list: [StreamChunk.Choice] = []
                try fields.elements(of: choices) { element in
                    list.append(try Self.choice(element, fields))
                }
                chunk.choices = list
            }
            if let usage = try Self.present(usage, .object, "usage") {
                var prompt, completion, promptDetails, completionDetails: Value?
                try fields.members(of: usage) { key, value in
                    if key == "prompt_tokens" {
                        prompt = value
                    } else if key == "completion_tokens" {
                        completion = value
                    } else if key == "prompt_tokens_details" {
                        promptDetails = value
                    } else if key == "completion_tokens_details" {
                        completionDetails = value
                    }
                }
                chunk.usage = StreamChunk.UsageCounts(
                    prompt_tokens: try Self.int(prompt, "prompt_tokens", fields),
                    completion_tokens: try Self.int(completion, "completion_tokens", fields),
                    prompt_tokens_details: try Self.json(promptDetails, fields),
                    completion_tokens_details: try Self.json(completionDetails, fields))
            }
            if let error = try Self.present(error, .object, "error") {
                var message: Value?
                try fields.members(of: error) { key, value in
                    if key == "message" { message = value }
                }
                chunk.error = StreamChunk.ErrorDetail(message: try Self.string(message, "message", fields))
            }
            chunk.system_fingerprint = try Self.string(fingerprint, "system_fingerprint", fields)
            chunk.service_tier = try Self.string(tier, "service_tier", fields)
            return chunk
        }
    }

    private static func choice(_ element: Value, _ fields: JSONFields) throws -> StreamChunk.Choice {
        guard element.kind == .object else { throw TypeMismatch(field: "choices[]") }
        var deltaValue, logprobs, finishReason: Value?
        try fields.members(of: element) { key, value in
            if key == "delta" {
                deltaValue = value
            } else if key == "finish_reason" {
                finishReason = value
            } else if key == "logprobs" {
                logprobs = value
            }
        }
        var delta: StreamChunk.Choice.Delta?
        if let deltaValue = try present(deltaValue, .object, "delta") {
            var content, reasoningContent, reasoning, refusal, toolCalls: Value?
            try fields.members(of: deltaValue) { key, value in
                if key == "content" {
                    content = value
                } else if key == "reasoning_content" {
                    reasoningContent = value
                } else if key == "reasoning" {
                    reasoning = value
                } else if key == "refusal" {
                    refusal = value
                } else if key == "tool_calls" {
                    toolCalls = value
                }
            }
            delta = StreamChunk.Choice.Delta(
                content: try string(content, "content", fields),
                reasoning_content: try string(reasoningContent, "reasoning_content", fields),
                reasoning: try string(reasoning, "reasoning", fields),
                refusal: try string(refusal, "refusal", fields),
                tool_calls: try json(toolCalls, fields))
        }
        return StreamChunk.Choice(
            delta: delta, logprobs: try json(logprobs, fields), finish_reason: try string(finishReason, "finish_reason", fields))
    }

    /// Any value built in full (the rare fields relayed as they are); nil when missing or `null`.
    private static func json(_ value: Value?, _ fields: JSONFields) throws -> JSONValue? {
        guard let value, value.kind != .null else { return nil }
        return try fields.value(value)
    }

    /// The value when it is of `kind`; nil when missing or `null`; otherwise a type mismatch.
    private static func present(_ value: Value?, _ kind: JSONFields.Kind, _ field: String) throws -> Value? {
        guard let value, value.kind != .null else { return nil }
        guard value.kind == kind else { throw TypeMismatch(field: field) }
        return value
    }

    private static func string(_ value: Value?, _ field: String, _ fields: JSONFields) throws -> String? {
        try present(value, .string, field).map { try fields.string($0) }
    }

    /// An integer, or a number with an integral value (as `JSONDecoder` accepts `12.0` for `Int`).
    private static func int(_ value: Value?, _ field: String, _ fields: JSONFields) throws -> Int? {
        guard let number = try present(value, .number, field) else { return nil }
        switch try fields.value(number) {
        case .int(let int): return int
        case .double(let double):
            guard let int = Int(exactly: double) else { throw TypeMismatch(field: field) }
            return int
        default: throw TypeMismatch(field: field)
        }
    }
}
