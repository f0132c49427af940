import HTTPTypes
import Hummingbird

/// The server's routes — templates with `{parameter}` segments, their methods and the handler of
/// each — in one place: the router is built from this table, `405` answers consult it, and the
/// OpenAPI test holds `openapi.yaml` to it. A route is added here and nowhere else.
struct RouteTable: Sendable {
    /// What answers one method of a route: a handler of the API.
    typealias Handler = @Sendable (SaleAPI, Request, SaleRequestContext) async -> Response

    struct Endpoint: Sendable {
        let method: HTTPRequest.Method
        let handle: Handler

        static func get(_ handle: @escaping Handler) -> Endpoint { Endpoint(method: .get, handle: handle) }
        static func post(_ handle: @escaping Handler) -> Endpoint { Endpoint(method: .post, handle: handle) }
    }

    /// Who a route serves: the API's clients, whose latency the live page charts, or operators
    /// and balancers (health checks, metrics, the page itself), counted but not timed there.
    enum Audience: Sendable {
        case clients
        case operators
    }

    struct Route: Sendable {
        let template: String
        let audience: Audience
        let endpoints: [Endpoint]

        init(_ template: String, for audience: Audience = .clients, _ endpoints: Endpoint...) {
            self.template = template
            self.audience = audience
            self.endpoints = endpoints
        }

        var methods: [String] { endpoints.map(\.method.rawValue) }
        var segments: [Substring] { template.split(separator: "/", omittingEmptySubsequences: true) }
        var allowHeader: String { (methods.contains("GET") ? methods + ["HEAD"] : methods).joined(separator: ", ") }
    }

    let routes: [Route]
    /// The templates of the clients' routes.
    private let clientTemplates: Set<String>

    init(routes: [Route]) {
        self.routes = routes
        clientTemplates = Set(routes.filter { $0.audience == .clients }.map(\.template))
    }

    /// Whether requests to `template` count towards the latency the live page charts.
    func isTimed(_ template: String) -> Bool { clientTemplates.contains(template) }

    static let server = RouteTable(routes: [
        Route("/checkout", .post { api, request, context in await api.checkout(request, context) }),
        Route("/purchase", .post { api, request, context in await api.purchase(request, context) }),
        Route("/sale", .get { api, request, context in await api.withoutParameters(request, context, api.currentSale) }),
        Route("/sales/{sale}/items/{item}", .get { api, request, context in await api.withoutParameters(request, context, api.item) }),
        Route("/sales/{sale}/items/{item}/image.svg", .get { api, request, context in
            await api.withoutParameters(request, context) { context in api.image(context) }
        }),
        Route("/users/{user}/purchases", .get { api, request, context in await api.purchases(request, context) }),
        Route("/health", for: .operators, .get { api, request, context in await api.withoutParameters(request, context, api.health) }),
        Route("/metrics", for: .operators, .get { api, request, context in await api.withoutParameters(request, context, api.metricsText) }),
        Route("/openapi.yaml", for: .operators, .get { api, request, context in
            await api.withoutParameters(request, context) { context in EmbeddedFiles.openAPI.response(context) }
        }),
        Route("/", for: .operators, .get { api, request, context in
            await api.withoutParameters(request, context) { context in EmbeddedFiles.livePage.response(context) }
        }),
        Route("/live", for: .operators, .get { api, request, context in await api.withoutParameters(request, context, api.live) }),
    ])

    /// Registers every endpoint of every route on `router`, answered by `api`.
    func register(on router: Router<SaleRequestContext>, api: SaleAPI) {
        for route in routes {
            for endpoint in route.endpoints {
                let handle = endpoint.handle
                router.on(RouterPath(route.template), method: endpoint.method) { request, context in
                    await handle(api, request, context)
                }
            }
        }
    }

    /// The route whose template matches `path` (ignoring the method), if any.
    func match(path: String) -> Route? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        return routes.first { route in
            let segments = route.segments
            guard segments.count == parts.count else { return false }
            return zip(segments, parts).allSatisfy { template, part in
                (template.first == "{" && template.last == "}" && !part.isEmpty) || template == part
            }
        }
    }
}
