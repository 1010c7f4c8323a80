import Configuration

/// swift-configuration's YAML file snapshot, read from text rather than from a file path (the
/// built-in default configuration is text, and so is what the tests pass), as a provider.
struct YAMLTextProvider: ConfigProvider {
    let yaml: YAMLSnapshot

    init(text: String, name: String) throws {
        var bytes = Array(text.utf8)
        yaml = try bytes.withUnsafeMutableBytes { buffer in
            try YAMLSnapshot(data: RawSpan(_unsafeBytes: UnsafeRawBufferPointer(buffer)), providerName: name, parsingOptions: .default)
        }
    }

    var providerName: String { yaml.providerName }

    func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        try yaml.value(forKey: key, type: type)
    }

    nonisolated(nonsending) func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try value(forKey: key, type: type)
    }

    nonisolated(nonsending) func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey, type: ConfigType,
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    func snapshot() -> any ConfigSnapshot { yaml }

    nonisolated(nonsending) func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}
