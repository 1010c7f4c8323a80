import Foundation

/// A command an operator declared under `tasks.commands`: users run it by name with parameters
/// that its declaration allows, never with a command line of their own.
public struct CommandDeclaration: Sendable, Equatable {
    public enum WorkerLoss: String, Sendable, CaseIterable {
        /// A run whose worker died is failed (the default: a job may not be safe to run twice).
        case fail
        /// A run whose worker died is run again from the start by another worker.
        case retry
    }

    public var name: String
    /// The program and its arguments; `{param}` inside an element is replaced by the parameter's
    /// value, and the element stays one argument whatever the value holds.
    public var argv: [String]
    public var params: [String: CommandParameter]
    public var timeoutSeconds: Double?
    /// Runs of this command at once in one worker process.
    public var maxConcurrency: Int?
    public var onWorkerLoss: WorkerLoss
    /// Between SIGTERM and SIGKILL when the run is cancelled or times out.
    public var graceSeconds: Double

    public init(
        name: String, argv: [String], params: [String: CommandParameter] = [:], timeoutSeconds: Double? = nil,
        maxConcurrency: Int? = nil, onWorkerLoss: WorkerLoss = .fail, graceSeconds: Double = 10
    ) {
        self.name = name
        self.argv = argv
        self.params = params
        self.timeoutSeconds = timeoutSeconds
        self.maxConcurrency = maxConcurrency
        self.onWorkerLoss = onWorkerLoss
        self.graceSeconds = graceSeconds
    }

    /// The parameter that carries the command's name in `POST /v1/tasks` params.
    public static let nameParameter = "name"

    /// The placeholders of one argv element, in order (`{epochs}` → `epochs`).
    public static func placeholders(in element: String) -> [String] {
        var names: [String] = []
        var rest = Substring(element)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            names.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return names
    }

    /// Checks what a user sent (the `name` key aside) and returns the parameters the command runs
    /// with: each declared one, its default filled in. Unknown parameters are refused, so that a
    /// typo is not silently ignored.
    public func validate(_ params: [String: JSONValue]) throws -> [String: JSONValue] {
        for key in params.keys.sorted() where key != Self.nameParameter && self.params[key] == nil {
            let known = self.params.keys.sorted().joined(separator: ", ")
            throw ChorusError.invalidRequest(
                message: "Unknown parameter 'params.\(key)' for command '\(name)'. Declared parameters: \(known.isEmpty ? "none" : known).",
                param: "params.\(key)", code: "unknown_parameter")
        }
        var resolved: [String: JSONValue] = [:]
        for (key, rule) in self.params.sorted(by: { $0.key < $1.key }) {
            let value = params[key].flatMap { $0.isNull ? nil : $0 } ?? rule.defaultValue
            guard let value else {
                throw ChorusError.invalidRequest(message: "Missing required parameter: 'params.\(key)'.", param: "params.\(key)", code: "missing_required_parameter")
            }
            resolved[key] = try rule.check(value, param: "params.\(key)")
        }
        return resolved
    }

    /// The argv with every placeholder replaced. No shell ever sees it: a value with spaces or
    /// `;` is one argument, passed as it is.
    public func arguments(for params: [String: JSONValue]) -> [String] {
        argv.map { element in
            var text = ""
            var rest = Substring(element)
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                text += rest[..<open]
                let key = String(rest[rest.index(after: open)..<close])
                text += params[key].map(CommandParameter.text) ?? String(rest[open...close])
                rest = rest[rest.index(after: close)...]
            }
            return text + rest
        }
    }

    /// `CHORUS_PARAM_<NAME>` for each parameter (upper case, other characters as `_`).
    public func environment(for params: [String: JSONValue]) -> [String: String] {
        var environment: [String: String] = [:]
        for (key, value) in params {
            let name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            environment["CHORUS_PARAM_\(name)"] = CommandParameter.text(value)
        }
        return environment
    }

    /// What is wrong with the declaration, if anything (for the configuration loader).
    public func problems() -> [(key: String, problem: String)] {
        var problems: [(String, String)] = []
        if argv.isEmpty || argv[0].isEmpty { problems.append(("argv", "must name a program")) }
        for (index, element) in argv.enumerated() {
            for placeholder in Self.placeholders(in: element) where params[placeholder] == nil {
                problems.append(("argv[\(index)]", "`{\(placeholder)}` is not a declared parameter"))
            }
        }
        for (key, rule) in params.sorted(by: { $0.key < $1.key }) {
            if key == Self.nameParameter { problems.append(("params.\(key)", "`name` is reserved for the command's name")) }
            if let problem = rule.problem() { problems.append(("params.\(key)", problem)) }
        }
        return problems
    }
}

/// One declared parameter: a small subset of JSON Schema.
public struct CommandParameter: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case integer, number, string, boolean
    }

    public var kind: Kind
    public var minimum: Double?
    public var maximum: Double?
    /// A regular expression a string must contain a match of (anchor it with `^…$`).
    public var pattern: String?
    public var choices: [JSONValue]?
    /// Given when the user leaves the parameter out; without one the parameter is required.
    public var defaultValue: JSONValue?
    /// Longest string accepted.
    public var maxLength: Int

    public init(kind: Kind, minimum: Double? = nil, maximum: Double? = nil, pattern: String? = nil, choices: [JSONValue]? = nil, defaultValue: JSONValue? = nil, maxLength: Int = 4096) {
        self.kind = kind
        self.minimum = minimum
        self.maximum = maximum
        self.pattern = pattern
        self.choices = choices
        self.defaultValue = defaultValue
        self.maxLength = maxLength
    }

    func problem() -> String? {
        if let pattern {
            do {
                _ = try Regex(pattern)
            } catch {
                return "pattern `\(pattern)` is not a valid regular expression"
            }
        }
        if let defaultValue, (try? check(defaultValue, param: "default")) == nil {
            return "the default does not satisfy the declaration"
        }
        return nil
    }

    /// The value as the command gets it (an integral number as an integer), or a 400 naming `param`.
    func check(_ value: JSONValue, param: String) throws -> JSONValue {
        func invalid(_ message: String, code: String = "invalid_value") -> ChorusError {
            .invalidRequest(message: "'\(param)' \(message)", param: param, code: code)
        }
        let checked: JSONValue
        switch kind {
        case .integer:
            guard case .int(let number) = value else {
                if case .double(let number) = value, let integer = value.intValue, Double(integer) == number {
                    return try check(.int(integer), param: param)
                }
                throw invalid("must be an integer.", code: "invalid_type")
            }
            try checkRange(Double(number), invalid)
            checked = .int(number)
        case .number:
            guard let number = value.doubleValue, number.isFinite else { throw invalid("must be a number.", code: "invalid_type") }
            try checkRange(number, invalid)
            checked = value
        case .boolean:
            guard value.boolValue != nil else { throw invalid("must be a boolean.", code: "invalid_type") }
            checked = value
        case .string:
            guard let text = value.stringValue else { throw invalid("must be a string.", code: "invalid_type") }
            // An argument cannot hold a NUL byte; a long value is almost certainly a mistake.
            guard !text.utf8.contains(0) else { throw invalid("must not contain NUL characters.") }
            guard text.count <= maxLength else { throw invalid("must be at most \(maxLength) characters long.") }
            if let pattern, let regex = try? Regex(pattern), (try? regex.firstMatch(in: text)) == nil {
                throw invalid("must match the pattern \(pattern).")
            }
            checked = value
        }
        if let choices, !choices.contains(where: { Self.same($0, checked) }) {
            let listed = choices.map(Self.text).joined(separator: ", ")
            throw invalid("must be one of: \(listed).")
        }
        return checked
    }

    private func checkRange(_ number: Double, _ invalid: (String, String) -> ChorusError) throws {
        if let minimum, number < minimum { throw invalid("must be at least \(Self.text(.double(minimum))).", "invalid_value") }
        if let maximum, number > maximum { throw invalid("must be at most \(Self.text(.double(maximum))).", "invalid_value") }
    }

    private static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.doubleValue, let y = b.doubleValue { return x == y }
        return a == b
    }

    /// A value as one argument: strings as they are, integral numbers without a fraction.
    public static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .int(let number): return String(number)
        case .double(let number):
            if let integer = value.intValue, Double(integer) == number { return String(integer) }
            return String(number)
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return ""
        case .array, .object: return (try? String(decoding: value.encoded(), as: UTF8.self)) ?? ""
        }
    }
}
