import Foundation

/// A Gemini `generateContent` body, checked about as strictly as Google's API checks it, and
/// read as the OpenAI-shaped `ChatRequest` the fake's answer logic takes.
///
/// Checked: known top-level and `generationConfig` fields only (Google refuses unknown names);
/// `contents` non-empty, roles `user` or `model`, every part exactly one of `text`,
/// `inline_data`, `file_data`, `functionCall`, `functionResponse` (either spelling, camelCase
/// or snake_case); `inline_data` with a MIME type and valid base64; `functionCall` only from the
/// model, `functionResponse` only from the user and naming a function the previous model turn
/// called, with an object `response`; a text-only `systemInstruction`; function declarations
/// with names; `functionCallingConfig.mode` one of AUTO, ANY, NONE, VALIDATED; as Gemini 3
/// checks, in the current turn (after the last user text) the first `functionCall` of each model
/// content must carry back the `thoughtSignature` the fake gave it.
///
/// Read as: the system instruction as a system message; user text as user messages; each
/// `functionResponse` as a `tool` message whose `tool_call_id` is the function's name and whose
/// text is the response's JSON (keys sorted); model turns as assistant messages with their calls;
/// declarations as `function` tools; `toolConfig` as `tool_choice`; `maxOutputTokens`,
/// `stopSequences`, `responseMimeType` + `responseJsonSchema`/`responseSchema` as their OpenAI
/// counterparts. `thinkingConfig.includeThoughts` says whether thought parts are sent.
struct GeminiRequest {
    let chat: ChatRequest
    let includeThoughts: Bool

    static let topLevelKeys: Set<String> = [
        "contents", "systemInstruction", "system_instruction", "tools", "toolConfig", "tool_config",
        "generationConfig", "generation_config", "safetySettings", "safety_settings", "cachedContent", "cached_content",
    ]
    static let generationKeys: Set<String> = [
        "temperature", "topP", "top_p", "topK", "top_k", "candidateCount", "candidate_count", "maxOutputTokens",
        "max_output_tokens", "stopSequences", "stop_sequences", "presencePenalty", "presence_penalty",
        "frequencyPenalty", "frequency_penalty", "seed", "responseMimeType", "response_mime_type", "responseSchema",
        "response_schema", "responseJsonSchema", "response_json_schema", "thinkingConfig", "thinking_config",
        "responseLogprobs", "response_logprobs", "logprobs", "responseModalities", "response_modalities",
    ]

    /// Throws `GeminiRequestError` (answered with 400 INVALID_ARGUMENT) for a body Google would refuse.
    init(body: Data, model: String, stream: Bool) throws(GeminiRequestError) {
        guard let root = (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] else {
            throw GeminiRequestError("Invalid JSON payload received: the body is not a JSON object.")
        }
        for key in root.keys where !Self.topLevelKeys.contains(key) {
            throw GeminiRequestError("Invalid JSON payload received. Unknown name \"\(key)\": Cannot find field.")
        }
        var messages: [[String: Any]] = []
        if let system = Self.field(root, "systemInstruction") {
            guard let parts = (system as? [String: Any])?["parts"] as? [[String: Any]], !parts.isEmpty,
                parts.allSatisfy({ $0.keys.count == 1 && $0["text"] is String })
            else { throw GeminiRequestError("systemInstruction must have text parts only.") }
            messages.append(["role": "system", "content": parts.compactMap { $0["text"] as? String }.joined(separator: "\n")])
        }
        guard let contents = root["contents"] as? [[String: Any]], !contents.isEmpty else {
            throw GeminiRequestError("* GenerateContentRequest.contents: contents is not specified")
        }
        var previousCalls: Set<String> = []
        let currentTurn = contents.lastIndex { content in
            (content["role"] as? String ?? "user") == "user" && (content["parts"] as? [[String: Any]] ?? []).contains { $0["text"] != nil }
        } ?? 0
        for (index, content) in contents.enumerated() {
            if index > currentTurn, let first = (content["parts"] as? [[String: Any]])?.first(where: { Self.field($0, "functionCall") != nil }) {
                guard let signature = Self.field(first, "thoughtSignature") as? String, signature.hasPrefix(GeminiEvents.signaturePrefix) else {
                    throw GeminiRequestError("Function call is missing a thought_signature in functionCall parts (contents[\(index)]). This is required for tools to work correctly.")
                }
            }
            let role = content["role"] as? String ?? "user"
            guard role == "user" || role == "model" else {
                throw GeminiRequestError("Please use a valid role: user, model. (contents[\(index)].role is \(role))")
            }
            guard let parts = content["parts"] as? [[String: Any]], !parts.isEmpty else {
                throw GeminiRequestError("* GenerateContentRequest.contents[\(index)].parts: contents.parts must not be empty.")
            }
            var texts: [String] = []
            var calls: [[String: Any]] = []
            var calledNow: Set<String> = []
            for (partIndex, part) in parts.enumerated() {
                let location = "contents[\(index)].parts[\(partIndex)]"
                let data = part.keys.filter { !["thought", "thoughtSignature", "thought_signature"].contains($0) }
                guard data.count == 1, let kind = data.first else {
                    throw GeminiRequestError("\(location) must have exactly one data field, has \(data.sorted())")
                }
                switch kind {
                case "text":
                    guard let text = part["text"] as? String else { throw GeminiRequestError("\(location).text must be a string") }
                    texts.append(text)
                case "inline_data", "inlineData":
                    let inline = part[kind] as? [String: Any] ?? [:]
                    guard let mime = Self.field(inline, "mimeType") as? String, !mime.isEmpty else {
                        throw GeminiRequestError("\(location).inline_data.mime_type is required")
                    }
                    guard let base64 = inline["data"] as? String, Data(base64Encoded: base64) != nil else {
                        throw GeminiRequestError("\(location).inline_data.data is not valid base64")
                    }
                case "file_data", "fileData":
                    guard let file = part[kind] as? [String: Any], Self.field(file, "fileUri") is String else {
                        throw GeminiRequestError("\(location).file_data.file_uri is required")
                    }
                case "functionCall", "function_call":
                    guard role == "model" else { throw GeminiRequestError("\(location): only the model's turns may have a functionCall") }
                    guard let call = part[kind] as? [String: Any], let name = call["name"] as? String, !name.isEmpty else {
                        throw GeminiRequestError("\(location).functionCall.name is required")
                    }
                    let args = call["args"] ?? [String: Any]()
                    guard args is [String: Any] else { throw GeminiRequestError("\(location).functionCall.args must be an object") }
                    calledNow.insert(name)
                    calls.append(["id": name, "type": "function", "function": ["name": name, "arguments": Self.jsonText(args)]])
                case "functionResponse", "function_response":
                    guard role == "user" else { throw GeminiRequestError("\(location): only the user's turns may have a functionResponse") }
                    guard let response = part[kind] as? [String: Any], let name = response["name"] as? String else {
                        throw GeminiRequestError("\(location).functionResponse.name is required")
                    }
                    guard previousCalls.contains(name) else {
                        throw GeminiRequestError("\(location): functionResponse `\(name)` answers no functionCall of the previous model turn")
                    }
                    guard let result = response["response"] as? [String: Any] else {
                        throw GeminiRequestError("\(location).functionResponse.response must be an object")
                    }
                    messages.append(["role": "tool", "tool_call_id": name, "content": Self.jsonText(result)])
                default:
                    throw GeminiRequestError("Invalid JSON payload received. Unknown name \"\(kind)\" at '\(location)'.")
                }
            }
            if role == "model" {
                var message: [String: Any] = ["role": "assistant", "content": texts.isEmpty ? NSNull() : texts.joined() as Any]
                if !calls.isEmpty { message["tool_calls"] = calls }
                messages.append(message)
            } else if !texts.isEmpty {
                messages.append(["role": "user", "content": texts.map { ["type": "text", "text": $0] }])
            }
            previousCalls = calledNow
        }

        var chat: [String: Any] = ["model": model, "stream": stream, "messages": messages]
        if let tools = root["tools"] {
            guard let tools = tools as? [[String: Any]] else { throw GeminiRequestError("tools must be an array of objects") }
            var functions: [[String: Any]] = []
            for tool in tools {
                for declaration in Self.field(tool, "functionDeclarations") as? [[String: Any]] ?? [] {
                    guard let name = declaration["name"] as? String, !name.isEmpty else {
                        throw GeminiRequestError("tools[].functionDeclarations[].name is required")
                    }
                    var function: [String: Any] = ["name": name]
                    if let schema = Self.field(declaration, "parametersJsonSchema") ?? declaration["parameters"] { function["parameters"] = schema }
                    functions.append(["type": "function", "function": function])
                }
            }
            chat["tools"] = functions
        }
        if let config = (Self.field(root, "toolConfig") as? [String: Any]).flatMap({ Self.field($0, "functionCallingConfig") as? [String: Any] }) {
            let names = Self.field(config, "allowedFunctionNames") as? [String] ?? []
            switch config["mode"] as? String ?? "AUTO" {
            case "NONE": chat["tool_choice"] = "none"
            case "AUTO", "VALIDATED": chat["tool_choice"] = "auto"
            case "ANY": chat["tool_choice"] = names.count == 1 ? ["type": "function", "function": ["name": names[0]]] as [String: Any] : "required"
            case let mode: throw GeminiRequestError("Invalid value at 'tool_config.function_calling_config.mode' (\(mode))")
            }
        }
        var includeThoughts = false
        if let generation = Self.field(root, "generationConfig") {
            guard let generation = generation as? [String: Any] else { throw GeminiRequestError("generationConfig must be an object") }
            for key in generation.keys where !Self.generationKeys.contains(key) {
                throw GeminiRequestError("Invalid JSON payload received. Unknown name \"\(key)\" at 'generation_config': Cannot find field.")
            }
            if let limit = Self.field(generation, "maxOutputTokens") as? Int { chat["max_tokens"] = limit }
            if let stops = Self.field(generation, "stopSequences") as? [String] { chat["stop"] = stops }
            if Self.field(generation, "responseMimeType") as? String == "application/json" {
                if let schema = Self.field(generation, "responseJsonSchema") ?? Self.field(generation, "responseSchema") {
                    chat["response_format"] = ["type": "json_schema", "json_schema": ["name": "response", "schema": schema]] as [String: Any]
                } else {
                    chat["response_format"] = ["type": "json_object"]
                }
            }
            if let thinking = Self.field(generation, "thinkingConfig") as? [String: Any] {
                includeThoughts = Self.field(thinking, "includeThoughts") as? Bool ?? false
            }
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: chat)
            self.chat = try JSONDecoder().decode(ChatRequest.self, from: data)
        } catch {
            throw GeminiRequestError("The fake upstream could not read the request: \(error)")
        }
        self.includeThoughts = includeThoughts
    }

    /// A field in either spelling the API accepts (`systemInstruction` or `system_instruction`).
    static func field(_ object: [String: Any], _ camelCase: String) -> Any? {
        if let value = object[camelCase] { return value }
        var snake = ""
        for character in camelCase {
            if character.isUppercase { snake += "_" + character.lowercased() } else { snake.append(character) }
        }
        return object[snake]
    }

    /// Compact JSON with sorted keys.
    static func jsonText(_ value: Any) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A Gemini request Google would refuse: 400 INVALID_ARGUMENT with this message.
struct GeminiRequestError: Error {
    let message: String

    init(_ message: String) {
        self.message = message
    }
}
