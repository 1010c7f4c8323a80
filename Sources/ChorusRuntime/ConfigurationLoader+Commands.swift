import ChorusCore

extension ConfigurationLoader {
    static let commandKeys: Set<String> = ["argv", "params", "timeout_seconds", "max_concurrency", "on_worker_loss", "grace_seconds"]
    static let parameterKeys: Set<String> = ["type", "minimum", "maximum", "pattern", "enum", "default", "max_length"]

    /// `tasks.commands`: read from the file's own mapping (its shape, a map of maps, is not one that
    /// environment variables can override), and checked whole at start so that a wrong
    /// declaration stops Chorus instead of failing a user's task later.
    static func commands(_ section: Any?) throws -> [String: CommandDeclaration] {
        guard let section else { return [:] }
        guard let mapping = section as? [String: Any] else {
            throw ConfigurationError(key: "tasks.commands", problem: "expected a mapping from command name to its declaration")
        }
        var commands: [String: CommandDeclaration] = [:]
        for (name, value) in mapping {
            let prefix = "tasks.commands.\(name)"
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || "0123456789._-".unicodeScalars.contains($0) }) else {
                throw ConfigurationError(key: prefix, problem: "a command name may hold lower-case letters, digits, `.`, `_` and `-`")
            }
            guard let fields = value as? [String: Any] else { throw ConfigurationError(key: prefix, problem: "expected a mapping") }
            for key in fields.keys where !commandKeys.contains(key) {
                throw ConfigurationError(key: "\(prefix).\(key)", problem: "unknown key; expected one of \(commandKeys.sorted().joined(separator: ", "))")
            }
            guard let argv = fields["argv"] as? [Any], !argv.isEmpty else {
                throw ConfigurationError(key: "\(prefix).argv", problem: "expected a non-empty list: the program and its arguments")
            }
            var command = CommandDeclaration(name: name, argv: argv.map(scalarText))
            if let params = fields["params"] {
                guard let params = params as? [String: Any] else { throw ConfigurationError(key: "\(prefix).params", problem: "expected a mapping") }
                for (key, rule) in params { command.params[key] = try parameter(rule, key: "\(prefix).params.\(key)") }
            }
            if let timeout = fields["timeout_seconds"] {
                guard let seconds = number(timeout), seconds > 0 else { throw ConfigurationError(key: "\(prefix).timeout_seconds", problem: "expected a positive number") }
                command.timeoutSeconds = seconds
            }
            if let grace = fields["grace_seconds"] {
                guard let seconds = number(grace), seconds >= 0 else { throw ConfigurationError(key: "\(prefix).grace_seconds", problem: "expected a number ≥ 0") }
                command.graceSeconds = seconds
            }
            if let limit = fields["max_concurrency"] {
                guard let count = limit as? Int, count >= 1 else { throw ConfigurationError(key: "\(prefix).max_concurrency", problem: "expected an integer ≥ 1") }
                command.maxConcurrency = count
            }
            if let loss = fields["on_worker_loss"] {
                guard let policy = CommandDeclaration.WorkerLoss(rawValue: scalarText(loss)) else {
                    throw ConfigurationError(key: "\(prefix).on_worker_loss", problem: "expected `fail` or `retry`, got `\(scalarText(loss))`")
                }
                command.onWorkerLoss = policy
            }
            if let problem = command.problems().first {
                throw ConfigurationError(key: "\(prefix).\(problem.key)", problem: problem.problem)
            }
            commands[name] = command
        }
        return commands
    }

    private static func parameter(_ value: Any, key: String) throws -> CommandParameter {
        guard let fields = value as? [String: Any] else { throw ConfigurationError(key: key, problem: "expected a mapping such as {type: integer, minimum: 1}") }
        for field in fields.keys where !parameterKeys.contains(field) {
            throw ConfigurationError(key: "\(key).\(field)", problem: "unknown key; expected one of \(parameterKeys.sorted().joined(separator: ", "))")
        }
        let typeName = fields["type"].map(scalarText) ?? ""
        guard let kind = CommandParameter.Kind(rawValue: typeName) else {
            throw ConfigurationError(key: "\(key).type", problem: "expected one of \(CommandParameter.Kind.allCases.map(\.rawValue).joined(separator: ", ")), got `\(typeName)`")
        }
        var rule = CommandParameter(kind: kind)
        for (field, target) in [("minimum", \CommandParameter.minimum), ("maximum", \CommandParameter.maximum)] {
            guard let bound = fields[field] else { continue }
            guard let number = number(bound) else { throw ConfigurationError(key: "\(key).\(field)", problem: "expected a number") }
            rule[keyPath: target] = number
        }
        if let pattern = fields["pattern"] { rule.pattern = scalarText(pattern) }
        if let length = fields["max_length"] {
            guard let count = length as? Int, count >= 1 else { throw ConfigurationError(key: "\(key).max_length", problem: "expected an integer ≥ 1") }
            rule.maxLength = count
        }
        if let choices = fields["enum"] {
            guard let list = choices as? [Any], !list.isEmpty else { throw ConfigurationError(key: "\(key).enum", problem: "expected a non-empty list") }
            rule.choices = list.map(json)
        }
        if let value = fields["default"] { rule.defaultValue = json(value) }
        return rule
    }

    private static func number(_ value: Any) -> Double? {
        if let int = value as? Int { return Double(int) }
        return value as? Double
    }

    private static func scalarText(_ value: Any) -> String {
        if let text = value as? String { return text }
        return "\(value)"
    }

    private static func json(_ value: Any) -> JSONValue {
        switch value {
        case let flag as Bool: return .bool(flag)
        case let int as Int: return .int(int)
        case let double as Double: return .double(double)
        default: return .string(scalarText(value))
        }
    }
}
