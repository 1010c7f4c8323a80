import ChorusCore
import Testing

@Suite struct CommandDeclarationTests {
    private let fineTune = CommandDeclaration(
        name: "fine-tune", argv: ["python3", "train.py", "--epochs", "{epochs}", "--data={dataset}", "{note}"],
        params: [
            "epochs": CommandParameter(kind: .integer, minimum: 1, maximum: 50),
            "dataset": CommandParameter(kind: .string, pattern: "^[a-z0-9_-]+$"),
            "note": CommandParameter(kind: .string, defaultValue: .string("none")),
            "rate": CommandParameter(kind: .number, minimum: 0, maximum: 1, defaultValue: .double(0.5)),
            "mode": CommandParameter(kind: .string, choices: [.string("fast"), .string("slow")], defaultValue: .string("fast")),
            "dry": CommandParameter(kind: .boolean, defaultValue: .bool(false)),
        ])

    private func rejection(_ params: [String: JSONValue]) -> (param: String?, code: String?)? {
        do {
            _ = try fineTune.validate(params)
            return nil
        } catch let ChorusError.invalidRequest(_, param, code) {
            return (param, code)
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func validParametersGetTheirDefaults() throws {
        let values = try fineTune.validate(["name": .string("fine-tune"), "epochs": .int(3), "dataset": .string("demo")])
        #expect(values == [
            "epochs": .int(3), "dataset": .string("demo"), "note": .string("none"), "rate": .double(0.5),
            "mode": .string("fast"), "dry": .bool(false),
        ])
        // An integral number sent as 3.0 is the integer 3.
        #expect(try fineTune.validate(["epochs": .double(3), "dataset": .string("demo")])["epochs"] == .int(3))
    }

    @Test(arguments: [
        (["dataset": JSONValue.string("demo")], "params.epochs", "missing_required_parameter"),
        (["epochs": .int(0), "dataset": .string("demo")], "params.epochs", "invalid_value"),
        (["epochs": .int(51), "dataset": .string("demo")], "params.epochs", "invalid_value"),
        (["epochs": .double(2.5), "dataset": .string("demo")], "params.epochs", "invalid_type"),
        (["epochs": .string("3"), "dataset": .string("demo")], "params.epochs", "invalid_type"),
        (["epochs": .int(3), "dataset": .string("Demo; rm -rf /")], "params.dataset", "invalid_value"),
        (["epochs": .int(3), "dataset": .int(7)], "params.dataset", "invalid_type"),
        (["epochs": .int(3), "dataset": .string("demo"), "rate": .double(1.5)], "params.rate", "invalid_value"),
        (["epochs": .int(3), "dataset": .string("demo"), "mode": .string("medium")], "params.mode", "invalid_value"),
        (["epochs": .int(3), "dataset": .string("demo"), "dry": .string("yes")], "params.dry", "invalid_type"),
        (["epochs": .int(3), "dataset": .string("demo"), "note": .string("a\u{0}b")], "params.note", "invalid_value"),
        (["epochs": .int(3), "dataset": .string("demo"), "argv": .array([])], "params.argv", "unknown_parameter"),
    ])
    func anInvalidParameterIsNamed(params: [String: JSONValue], param: String, code: String) {
        let rejected = rejection(params)
        #expect(rejected?.param == param)
        #expect(rejected?.code == code)
    }

    @Test func placeholdersBecomeExactlyOneArgumentEach() throws {
        let values = try fineTune.validate(["epochs": .int(3), "dataset": .string("demo"), "note": .string("a b; echo $HOME `id` > /tmp/x")])
        #expect(fineTune.arguments(for: values) == [
            "python3", "train.py", "--epochs", "3", "--data=demo", "a b; echo $HOME `id` > /tmp/x",
        ])
    }

    @Test func environmentNamesEachParameter() throws {
        let values = try fineTune.validate(["epochs": .int(3), "dataset": .string("demo")])
        let environment = fineTune.environment(for: values)
        #expect(environment["CHORUS_PARAM_EPOCHS"] == "3")
        #expect(environment["CHORUS_PARAM_DATASET"] == "demo")
        #expect(environment["CHORUS_PARAM_RATE"] == "0.5")
        #expect(environment["CHORUS_PARAM_DRY"] == "false")
    }

    @Test func aPlaceholderWithoutAParameterIsADeclarationProblem() {
        let command = CommandDeclaration(name: "x", argv: ["echo", "{missing}"])
        #expect(command.problems().map(\.key) == ["argv[1]"])
        let badPattern = CommandDeclaration(name: "x", argv: ["echo"], params: ["p": CommandParameter(kind: .string, pattern: "(")])
        #expect(badPattern.problems().map(\.key) == ["params.p"])
        #expect(CommandDeclaration.placeholders(in: "--a={x}-{y}") == ["x", "y"])
    }
}
