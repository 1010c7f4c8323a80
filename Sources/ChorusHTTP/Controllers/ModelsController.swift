import ChorusCore
import ChorusRuntime
import Foundation
import Hummingbird
import NIOCore

/// `GET /v1/models` and `GET /v1/models/{id}`.
struct ModelsController: Sendable {
    let models: ModelRegistry

    var endpoints: RouteCollection<ChorusRequestContext> {
        let routes = RouteCollection(context: ChorusRequestContext.self)
        routes.get(use: list)
        routes.get(":id", use: show)
        return routes
    }

    struct ModelList: Encodable {
        var object = "list"
        var data: [ModelListing]
    }

    @Sendable func list(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        try Self.json(ModelList(data: models.listings))
    }

    @Sendable func show(_ request: Request, context: ChorusRequestContext) async throws -> Response {
        let id = try context.parameters.require("id")
        guard let listing = models.listings.first(where: { $0.id == id }) else { throw ChorusError.modelNotFound(id) }
        return try Self.json(listing)
    }

    static func json(_ value: some Encodable) throws -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: try JSONEncoder.compact.encode(value))))
    }
}
