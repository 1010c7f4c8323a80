import Hummingbird

/// `GET /openapi.json`, the API's OpenAPI 3.1 document, and `GET /docs`, the page that renders it
/// (`Web/docs.html` and `Web/js/docs.js`: served by Chorus itself, under the chat page's CSP).
/// Both need no credentials, like the chat page; both revalidate with their ETag.
struct OpenAPIController: Sendable {
    let web: WebController
    let document: WebAssets.File

    init(web: WebController, document: OpenAPIDocument = .shared) {
        self.web = web
        self.document = WebAssets.File(contentType: "application/json", bytes: document.json)
    }

    func addRoutes(to router: Router<ChorusRequestContext>) {
        router.get("/openapi.json") { request, _ in WebController.serve(document, request) }
        router.get("/docs") { request, _ in try web.serve("docs.html", request) }
    }
}
