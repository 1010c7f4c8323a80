import ChorusCore
import Foundation
import Yams

/// The OpenAPI 3.1 description of the API: `OpenAPI/openapi.yaml`, maintained by hand, turned into
/// JSON once per process (`GET /openapi.json`). Keys keep the file's order, so `/docs` lists the
/// operations as the file does.
struct OpenAPIDocument: Sendable {
    /// The document as JSON text.
    let json: [UInt8]

    static let shared: OpenAPIDocument = {
        // A broken document is a broken build: `OpenAPIDocumentTests` loads it.
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml", subdirectory: "OpenAPI") else {
            preconditionFailure("the OpenAPI/openapi.yaml resource is missing")
        }
        do {
            return try OpenAPIDocument(yaml: String(contentsOf: url, encoding: .utf8))
        } catch {
            preconditionFailure("OpenAPI/openapi.yaml does not parse: \(error)")
        }
    }()

    init(yaml: String) throws {
        guard let node = try Yams.compose(yaml: yaml) else { throw ChorusError.internalError("empty OpenAPI document") }
        var writer = JSONWriter(capacity: yaml.utf8.count)
        try Self.write(node, to: &writer)
        json = writer.bytes
    }

    /// YAML to JSON, mappings in the order written. Plain scalars are typed by YAML 1.2's core
    /// schema as Yams resolves them (so quote `"yes"`, `"200"` and the like where a string is meant,
    /// except as keys: keys are always strings).
    private static func write(_ node: Node, to writer: inout JSONWriter) throws {
        switch node {
        case .mapping(let mapping):
            writer.beginObject()
            for (key, value) in mapping {
                guard let name = key.string else { throw ChorusError.internalError("a non-scalar key in the OpenAPI document") }
                writer.key(name)
                try write(value, to: &writer)
            }
            writer.endObject()
        case .sequence(let sequence):
            writer.beginArray()
            for item in sequence { try write(item, to: &writer) }
            writer.endArray()
        case .scalar(let scalar):
            switch node.tag.rawValue {
            case Tag.Name.null.rawValue: writer.null()
            case Tag.Name.bool.rawValue: writer.bool(node.bool ?? false)
            case Tag.Name.int.rawValue: writer.int(node.int ?? 0)
            case Tag.Name.float.rawValue: writer.raw(Array(String(node.float ?? 0).utf8))
            default: writer.string(scalar.string)
            }
        case .alias:
            throw ChorusError.internalError("YAML aliases are not used in the OpenAPI document")
        }
    }
}
