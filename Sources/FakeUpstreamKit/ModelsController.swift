import Hummingbird

/// `GET /v1/models` and `GET /v1/models/{id}`: the one configured model.
struct ModelsController<Context: RequestContext>: Sendable {
    let configuration: FakeUpstreamConfiguration

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        let model = Self.modelJSON(id: self.configuration.defaultModel)
        let list = ByteBuffer(string: #"{"object":"list","data":["# + model + "]}")
        routes.get("models") { _, _ in
            jsonResponse(list)
        }
        routes.get("models/{id}") { _, context in
            let id = try context.parameters.require("id")
            return jsonResponse(ByteBuffer(string: Self.modelJSON(id: id)))
        }
        return routes
    }

    private static func modelJSON(id: String) -> String {
        #"{"id":"# + JSONText.quoted(id) + #","object":"model","created":1700000000,"owned_by":"fake"}"#
    }
}
