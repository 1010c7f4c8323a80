public import ChorusCore
import Foundation

/// An OpenAI Chat Completions body (as `UpstreamRequest.body` holds it) written as the body of
/// Gemini's `generateContent`.
///
/// - system and developer messages, wherever they are, become `systemInstruction`;
/// - user messages are `user` contents, assistant messages `model` contents; their tool calls are
///   `functionCall` parts, and tool results `functionResponse` parts of a `user` content, named
///   after the call their `tool_call_id` answers; a call's thought signature, kept in its id by
///   `GeminiResponseDecoder`, goes back as the part's `thoughtSignature`. Consecutive contents of one role are merged,
///   so the results of parallel calls go back together as Gemini expects;
/// - images, audio and files given as `data:` URLs are `inline_data`; an image at a Gemini File
///   API URI is `file_data`. Any other http(s) URL is refused: Gemini does not fetch arbitrary URLs;
/// - tools are `functionDeclarations` with their JSON Schema as `parametersJsonSchema`, and
///   `response_format` `json_schema` goes as `responseJsonSchema`: OpenAI's schemas are JSON
///   Schema (`additionalProperties`, `$defs`, …), which the older `parameters`/`responseSchema`
///   fields (an OpenAPI subset) reject;
/// - `reasoning_effort` is a `thinkingConfig` budget with `includeThoughts`, so thoughts come back.
///
/// Fields with no Gemini counterpart (`user`, `metadata`, `parallel_tool_calls`, …) are left out;
/// `logprobs` is refused rather than silently not answered.
public enum GeminiRequestBody {
    /// The thinking budget (tokens) for each `reasoning_effort`; `none` turns thinking off.
    static let thinkingBudgets: [String: Int] = ["minimal": 512, "low": 1024, "medium": 8192, "high": 24576]

    /// Throws `ChorusError.invalidRequest` for what Gemini cannot be given.
    public static func make(from body: [String: JSONValue]) throws -> JSONValue {
        var result: [String: JSONValue] = [:]
        var system: [JSONValue] = []
        var contents: [(role: String, parts: [JSONValue])] = []
        var toolNames: [String: String] = [:]

        func append(_ role: String, _ parts: [JSONValue]) {
            guard !parts.isEmpty else { return }
            if let last = contents.last, last.role == role {
                contents[contents.count - 1].parts += parts
            } else {
                contents.append((role, parts))
            }
        }

        for (index, message) in (body["messages"]?.arrayValue ?? []).enumerated() {
            let param = "messages[\(index)]"
            switch message["role"]?.stringValue ?? "" {
            case "system", "developer":
                system += try parts(of: message["content"], param: "\(param).content", textOnly: true)
            case "user":
                append("user", try parts(of: message["content"], param: "\(param).content", textOnly: false))
            case "assistant":
                var parts = try self.parts(of: message["content"], param: "\(param).content", textOnly: true)
                for (callIndex, call) in (message["tool_calls"]?.arrayValue ?? []).enumerated() {
                    let name = call["function"]?["name"]?.stringValue ?? ""
                    if let id = call["id"]?.stringValue { toolNames[id] = name }
                    let arguments = try self.arguments(call["function"]?["arguments"], param: "\(param).tool_calls[\(callIndex)].function.arguments")
                    var part: [String: JSONValue] = ["functionCall": .object(["name": .string(name), "args": arguments])]
                    if let id = call["id"]?.stringValue, let separator = id.range(of: GeminiResponseDecoder.signatureSeparator) {
                        part["thoughtSignature"] = .string(String(id[separator.upperBound...]))
                    }
                    parts.append(.object(part))
                }
                append("model", parts)
            case "tool":
                let id = message["tool_call_id"]?.stringValue ?? ""
                guard let name = toolNames[id] ?? message["name"]?.stringValue else {
                    throw ChorusError.invalidRequest(
                        message: "Invalid '\(param).tool_call_id': '\(id)' answers no tool call of an earlier assistant message; Gemini needs the function's name.",
                        param: "\(param).tool_call_id", code: "invalid_value")
                }
                append("user", [functionResponse(name: name, content: message["content"])])
            case "function":
                append("user", [functionResponse(name: message["name"]?.stringValue ?? "", content: message["content"])])
            default:
                break
            }
        }
        result["contents"] = .array(contents.map { .object(["role": .string($0.role), "parts": .array($0.parts)]) })
        if !system.isEmpty { result["systemInstruction"] = .object(["parts": .array(system)]) }

        if let tools = body["tools"]?.arrayValue, !tools.isEmpty {
            result["tools"] = .array([.object(["functionDeclarations": .array(try tools.enumerated().map(declaration))])])
        }
        if let choice = body["tool_choice"], !choice.isNull {
            result["toolConfig"] = .object(["functionCallingConfig": try functionCallingConfig(choice)])
        }
        let generation = try generationConfig(body)
        if !generation.isEmpty { result["generationConfig"] = .object(generation) }
        return .object(result)
    }

    // MARK: - Messages

    /// The parts of a message's `content` (a string or content parts); null is no parts.
    private static func parts(of content: JSONValue?, param: String, textOnly: Bool) throws -> [JSONValue] {
        switch content {
        case .string(let text)?:
            return text.isEmpty ? [] : [.object(["text": .string(text)])]
        case .array(let items)?:
            return try items.enumerated().compactMap { partIndex, item in
                let param = "\(param)[\(partIndex)]"
                let type = item["type"]?.stringValue ?? ""
                switch type {
                case "text":
                    let text = item["text"]?.stringValue ?? ""
                    return text.isEmpty ? nil : .object(["text": .string(text)])
                case "refusal":
                    return nil
                case "image_url" where !textOnly:
                    return try image(item["image_url"]?["url"]?.stringValue ?? "", param: "\(param).image_url.url")
                case "input_audio" where !textOnly:
                    let format = item["input_audio"]?["format"]?.stringValue ?? "wav"
                    return inlineData(mimeType: "audio/\(format)", data: item["input_audio"]?["data"]?.stringValue ?? "")
                case "file" where !textOnly:
                    guard let url = item["file"]?["file_data"]?.stringValue else {
                        throw ChorusError.invalidRequest(
                            message: "Invalid '\(param).file': a Gemini model takes files as `file_data` (a base64 data: URL), not by `file_id`.",
                            param: "\(param).file", code: "unsupported_value")
                    }
                    return try dataURL(url, param: "\(param).file.file_data")
                default:
                    throw ChorusError.invalidRequest(
                        message: "Invalid '\(param).type': a Gemini model does not take `\(type)` parts in this message.",
                        param: "\(param).type", code: "unsupported_value")
                }
            }
        default:
            return []
        }
    }

    /// A `data:` URL as `inline_data`, a Gemini File API URI as `file_data`; other URLs refused.
    private static func image(_ url: String, param: String) throws -> JSONValue {
        if url.hasPrefix("data:") { return try dataURL(url, param: param) }
        if url.hasPrefix("https://generativelanguage.googleapis.com/") || url.hasPrefix("gs://") {
            return .object(["file_data": .object(["file_uri": .string(url)])])
        }
        throw ChorusError.invalidRequest(
            message: "Invalid '\(param)': a Gemini model takes images as base64 data: URLs (data:image/png;base64,…) or Gemini File API URIs; it does not fetch other URLs.",
            param: param, code: "unsupported_value")
    }

    /// `data:MIME;base64,DATA` as `inline_data`.
    private static func dataURL(_ url: String, param: String) throws -> JSONValue {
        guard url.hasPrefix("data:"), let comma = url.firstIndex(of: ","),
            url[..<comma].hasSuffix(";base64")
        else {
            throw ChorusError.invalidRequest(
                message: "Invalid '\(param)': expected a base64 data: URL (data:MIME;base64,DATA).", param: param, code: "invalid_value")
        }
        let mimeType = url[url.index(url.startIndex, offsetBy: 5)..<comma].dropLast(";base64".count)
        return inlineData(mimeType: mimeType.isEmpty ? "application/octet-stream" : String(mimeType), data: String(url[url.index(after: comma)...]))
    }

    private static func inlineData(mimeType: String, data: String) -> JSONValue {
        .object(["inline_data": .object(["mime_type": .string(mimeType), "data": .string(data)])])
    }

    /// A tool call's `arguments` (JSON text) as the object `functionCall.args` is.
    private static func arguments(_ value: JSONValue?, param: String) throws -> JSONValue {
        let text = value?.stringValue ?? ""
        if text.trimmingCharacters(in: .whitespaces).isEmpty { return .object([:]) }
        guard let parsed = try? JSONValue.parse(Array(text.utf8)), parsed.objectValue != nil else {
            throw ChorusError.invalidRequest(
                message: "Invalid '\(param)': a Gemini model needs the arguments as a JSON object.", param: param, code: "invalid_value")
        }
        return parsed
    }

    /// A tool result: a JSON object as it is, anything else under `result` (`response` is an object).
    private static func functionResponse(name: String, content: JSONValue?) -> JSONValue {
        let text: String
        switch content {
        case .string(let value)?: text = value
        case .array(let items)?: text = items.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined(separator: "\n")
        default: text = ""
        }
        let parsed = try? JSONValue.parse(Array(text.utf8))
        let response: JSONValue = parsed?.objectValue != nil ? parsed! : .object(["result": parsed ?? .string(text)])
        return .object(["functionResponse": .object(["name": .string(name), "response": response])])
    }

    // MARK: - Tools

    private static func declaration(_ index: Int, _ tool: JSONValue) throws -> JSONValue {
        guard tool["type"]?.stringValue == "function", let function = tool["function"], let name = function["name"]?.stringValue else {
            throw ChorusError.invalidRequest(
                message: "Invalid 'tools[\(index)]': a Gemini model takes only `function` tools with a name.", param: "tools[\(index)]", code: "unsupported_value")
        }
        var declaration: [String: JSONValue] = ["name": .string(name)]
        if let description = function["description"]?.stringValue { declaration["description"] = .string(description) }
        if let parameters = function["parameters"], parameters.objectValue != nil { declaration["parametersJsonSchema"] = parameters }
        return .object(declaration)
    }

    /// `tool_choice`: none, auto, required (ANY), or one named function (ANY, only that one).
    private static func functionCallingConfig(_ choice: JSONValue) throws -> JSONValue {
        switch choice {
        case .string("none"): return .object(["mode": .string("NONE")])
        case .string("auto"): return .object(["mode": .string("AUTO")])
        case .string("required"): return .object(["mode": .string("ANY")])
        default:
            if let name = choice["function"]?["name"]?.stringValue {
                return .object(["mode": .string("ANY"), "allowedFunctionNames": .array([.string(name)])])
            }
            throw ChorusError.invalidRequest(
                message: "Invalid 'tool_choice': expected none, auto, required or a named function.", param: "tool_choice", code: "invalid_value")
        }
    }

    // MARK: - Sampling and output

    private static func generationConfig(_ body: [String: JSONValue]) throws -> [String: JSONValue] {
        var config: [String: JSONValue] = [:]
        let numbers = ["temperature": "temperature", "top_p": "topP", "presence_penalty": "presencePenalty", "frequency_penalty": "frequencyPenalty"]
        for (openAI, gemini) in numbers {
            if let value = body[openAI], value.doubleValue != nil { config[gemini] = value }
        }
        if let seed = body["seed"]?.intValue { config["seed"] = .int(seed) }
        if let limit = (body["max_completion_tokens"] ?? body["max_tokens"])?.intValue { config["maxOutputTokens"] = .int(limit) }
        switch body["stop"] {
        case .string(let stop)?: config["stopSequences"] = .array([.string(stop)])
        case .array(let stops)? where !stops.isEmpty: config["stopSequences"] = .array(stops)
        default: break
        }
        if let format = body["response_format"] {
            switch format["type"]?.stringValue {
            case "json_object":
                config["responseMimeType"] = .string("application/json")
            case "json_schema":
                config["responseMimeType"] = .string("application/json")
                if let schema = format["json_schema"]?["schema"] { config["responseJsonSchema"] = schema }
            default:
                break
            }
        }
        if let effort = body["reasoning_effort"]?.stringValue {
            if effort == "none" {
                config["thinkingConfig"] = .object(["thinkingBudget": .int(0)])
            } else if let budget = thinkingBudgets[effort] {
                config["thinkingConfig"] = .object(["includeThoughts": .bool(true), "thinkingBudget": .int(budget)])
            } else {
                throw ChorusError.invalidRequest(
                    message: "Invalid 'reasoning_effort': expected none, minimal, low, medium or high.", param: "reasoning_effort", code: "invalid_value")
            }
        }
        if body["logprobs"]?.boolValue == true {
            throw ChorusError.invalidRequest(
                message: "A Gemini model does not return logprobs through Chorus; leave `logprobs` out.", param: "logprobs", code: "unsupported_value")
        }
        return config
    }
}
