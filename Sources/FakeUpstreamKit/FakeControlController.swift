import Hummingbird
import NIOCore

/// Introspection for tests: `GET /_fake/stats`, `GET /_fake/requests?last=N`, `GET /_fake/traceparents?last=N`
/// (the W3C `traceparent` headers received), `POST /_fake/reset`.
struct FakeControlController<Context: RequestContext>: Sendable {
    let stats: FakeUpstreamStats

    var endpoints: RouteCollection<Context> {
        let routes = RouteCollection(context: Context.self)
        routes.get("stats") { _, _ in
            jsonResponse(ByteBuffer(string: await self.stats.snapshot().json))
        }
        routes.get("requests") { request, _ in
            let last = request.uri.queryParameters.get("last", as: Int.self) ?? FakeUpstreamStats.requestLogCapacity
            return jsonResponse(await self.stats.lastRequestBodiesJSON(last))
        }
        routes.get("traceparents") { request, _ in
            let last = request.uri.queryParameters.get("last", as: Int.self) ?? FakeUpstreamStats.requestLogCapacity
            let values = await self.stats.lastTraceparents(last)
            return jsonResponse(ByteBuffer(string: "[" + values.map { "\"\($0.filter { $0.isLetter || $0.isNumber || $0 == "-" })\"" }.joined(separator: ",") + "]"))
        }
        routes.post("reset") { _, _ in
            await self.stats.reset()
            return jsonResponse(ByteBuffer(string: await self.stats.snapshot().json))
        }
        return routes
    }
}

/// A 200 response with a JSON body.
func jsonResponse(_ body: ByteBuffer) -> Response {
    Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: body))
}
