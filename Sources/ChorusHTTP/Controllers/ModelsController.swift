import ChorusCore
import ChorusRuntime
public import Hummingbird

/// `GET /v1/models` and `GET /v1/models/{id}`.
struct ModelsController: Sendable {
    let models: ModelRegistry

    var endpoints: RouteCollection<ChorusRequestContext> {
        let routes = RouteCollection(context: ChorusRequestContext.self)
        routes.get(use: list)
        routes.get(":id", use: show)
        return routes
    }

    @Sendable func list(_ request: Request, context: ChorusRequestContext) async throws -> ListObject<ModelListing> {
        ListObject(models.listings)
    }

    @Sendable func show(_ request: Request, context: ChorusRequestContext) async throws -> ModelListing {
        let id = try context.parameters.require("id")
        guard let listing = models.listings.first(where: { $0.id == id }) else { throw ChorusError.modelNotFound(id) }
        return listing
    }
}

/// `GET /v1/models` entries are sent as they are.
extension ModelListing: ResponseEncodable {}
