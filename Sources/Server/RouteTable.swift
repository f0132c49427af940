/// The server's routes, as templates with `{parameter}` segments and their methods. The router
/// is built from this table, `405` answers consult it, and the OpenAPI test checks
/// `openapi.yaml` against it.
struct RouteTable: Sendable {
    struct Route: Sendable, Hashable {
        let template: String
        let methods: [String]

        var segments: [Substring] { template.split(separator: "/", omittingEmptySubsequences: true) }
        var allowHeader: String { (methods.contains("GET") ? methods + ["HEAD"] : methods).joined(separator: ", ") }
    }

    let routes: [Route]

    static let server = RouteTable(routes: [
        Route(template: "/checkout", methods: ["POST"]),
        Route(template: "/purchase", methods: ["POST"]),
        Route(template: "/sale", methods: ["GET"]),
        Route(template: "/sales/{sale}/items/{item}", methods: ["GET"]),
        Route(template: "/sales/{sale}/items/{item}/image.svg", methods: ["GET"]),
        Route(template: "/users/{user}/purchases", methods: ["GET"]),
        Route(template: "/health", methods: ["GET"]),
        Route(template: "/metrics", methods: ["GET"]),
    ])

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
