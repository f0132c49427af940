import Engine
import Foundation
import Testing
import Yams

@testable import Server

/// Keeps `openapi.yaml` true, read by a real YAML parser (`OpenAPIContract`): its paths and
/// methods are exactly the route table's; its error codes exactly those the engine and the server
/// can answer; and, against servers running in this process and answering over real HTTP, every
/// documented path, method, parameter and status is exercised, and every answer's status,
/// content type, documented headers and JSON body fit what the document says of it.
@Suite struct OpenAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func yaml() throws -> String {
        try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
    }

    static func contract() throws -> OpenAPIContract { try OpenAPIContract(yaml: try yaml()) }

    @Test func pathsMatchTheRouteTable() throws {
        let contract = try Self.contract()
        var documented: [String: Set<String>] = [:]
        for (template, method) in contract.operations { documented[template, default: []].insert(method) }
        let served = Dictionary(uniqueKeysWithValues: RouteTable.server.routes.map { ($0.template, Set($0.methods)) })
        #expect(documented == served)
        // Path parameters: exactly the template's placeholders, each required.
        for (template, method) in contract.operations {
            let placeholders = Set(template.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
            let parameters = try contract.parameters(template, method).filter { $0.location == "path" }
            #expect(Set(parameters.map(\.name)) == placeholders, "\(method) \(template)")
            #expect(parameters.allSatisfy { $0.required }, "\(method) \(template)")
        }
    }

    /// Every code the engine's API layer can answer, read from its sources.
    static func engineCodes() throws -> Set<String> {
        let folder = root.appendingPathComponent("Sources/Engine/API")
        var codes: Set<String> = []
        for file in try FileManager.default.contentsOfDirectory(atPath: folder.path) where file.hasSuffix(".swift") {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for pattern in [#"code: "([a-z_]+)""#, #"\.badRequest\("([a-z_]+)""#] {
                let regex = try NSRegularExpression(pattern: pattern)
                for match in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                    guard let range = Range(match.range(at: 1), in: text) else { continue }
                    codes.insert(String(text[range]))
                }
            }
        }
        return codes
    }

    @Test func everyErrorCodeIsListed() throws {
        let contract = try Self.contract()
        let schema = try #require(contract.root["components"]?["schemas"]?["Error"]?["properties"]?["error"]?["properties"]?["code"])
        let listed = Set(schema["enum"]?.sequence?.compactMap(\.string) ?? [])
        let engine = try Self.engineCodes()
        #expect(engine.count >= 19, "found \(engine.sorted())")
        for code in CheckoutOutcome.allCases where code != .held { #expect(engine.contains(code.rawValue)) }
        let server = Set(APIError.serverCodes.map(\.code))
        #expect(engine.union(server).subtracting(listed).isEmpty, "missing from openapi.yaml: \(engine.union(server).subtracting(listed))")
        #expect(listed.subtracting(engine.union(server)).isEmpty, "stale in openapi.yaml: \(listed.subtracting(engine.union(server)))")
    }

    /// The document the server serves is the repository's, byte for byte (compiled in).
    @Test func servesItsOwnDocument() async throws {
        try await withServer { server in
            let reply = try await server.get("/openapi.yaml")
            #expect(reply.status == 200)
            #expect(reply.text == (try Self.yaml()))
        }
    }

    // MARK: - Against running servers

    /// Which documented operations, statuses and parameters the exchanges below reached.
    final class Coverage: @unchecked Sendable {
        var statuses: Set<String> = []
        var parameters: Set<String> = []
        var problems: [String] = []
    }

    /// Sends one request, names the route it must have reached, and holds the answer to the document.
    static func exchange(
        _ server: RunningServer, _ contract: OpenAPIContract, _ coverage: Coverage, _ method: String, _ target: String,
        route template: String, headers: [(String, String)] = [], body: [UInt8] = []
    ) async throws -> HTTPReply {
        let reply = try await server.request(method, target, headers: headers, body: body)
        let path = String(target.prefix { $0 != "?" })
        let label = "\(method) \(target) → \(reply.status)"
        if RouteTable.server.match(path: path)?.template != template { coverage.problems.append("\(label): not the route \(template)") }
        // A method the path does not have is answered as the path's documented operations say (405).
        let documentedMethods = contract.operations.filter { $0.template == template }.map(\.method)
        let operationMethod = documentedMethods.contains(method) ? method : documentedMethods.first ?? method
        if operationMethod != method, reply.status != 405 { coverage.problems.append("\(label): an undocumented method not refused") }
        let responses = try contract.responses(template, operationMethod)
        guard let response = responses[String(reply.status)] else {
            coverage.problems.append("\(label): status not documented (documented: \(responses.keys.sorted()))")
            return reply
        }
        coverage.statuses.insert("\(operationMethod) \(template) \(reply.status)")
        guard operationMethod == method else { return try check(reply, against: response, contract, coverage, label) }
        // Parameters sent: every query name and every documented header.
        let parameters = try contract.parameters(template, method)
        let queryNames = (target.split(separator: "?", maxSplits: 1).dropFirst().first ?? "").split(separator: "&")
            .map { String($0.prefix { $0 != "=" }) }
        for parameter in parameters {
            let sent = parameter.location == "query" ? queryNames.contains(parameter.name)
                : parameter.location == "header" ? headers.contains { $0.0.lowercased() == parameter.name.lowercased() }
                : parameter.location == "path"
            if sent { coverage.parameters.insert("\(method) \(template) \(parameter)") }
            if (200..<300).contains(reply.status), parameter.required, !sent {
                coverage.problems.append("\(label): succeeded without the required \(parameter)")
            }
        }
        if (200..<300).contains(reply.status) {
            for name in queryNames where !parameters.contains(where: { $0.location == "query" && $0.name == name }) {
                coverage.problems.append("\(label): succeeded with the undocumented query parameter \(name)")
            }
        }
        return try check(reply, against: response, contract, coverage, label)
    }

    /// The answer's documented headers, content type and JSON body.
    static func check(
        _ reply: HTTPReply, against response: Node, _ contract: OpenAPIContract, _ coverage: Coverage, _ label: String
    ) throws -> HTTPReply {
        for (name, _) in response["headers"]?.mapping ?? [:] {
            if let name = name.string, reply.header(name) == nil { coverage.problems.append("\(label): no \(name) header") }
        }
        let contentType = (reply.header("content-type") ?? "").split(separator: ";").first.map(String.init) ?? ""
        guard let content = response["content"]?.mapping, let media = content[contentType] else {
            coverage.problems.append("\(label): content type \(contentType) not documented")
            return reply
        }
        if contentType == "application/json", let schema = media["schema"] {
            do {
                coverage.problems += try contract.problems(try JSONValue.parse(reply.body), schema).map { "\(label): \($0)" }
            } catch {
                coverage.problems.append("\(label): the body is not JSON (\(error))")
            }
        }
        return reply
    }

    /// Every documented (method, path, status) is answered by a running server as documented,
    /// and every documented parameter is used. Servers: the in-memory store (the contract does not
    /// depend on the stores; the flow tests run both), with signed and gateway identity, with the
    /// per-client limits, and on stores that stop answering.
    @Test func runningServersAnswerAsDocumented() async throws {
        let contract = try Self.contract()
        let coverage = Coverage()
        func send(
            _ server: RunningServer, _ method: String, _ target: String, route: String, headers: [(String, String)] = [],
            body: [UInt8] = []
        ) async throws -> HTTPReply {
            try await Self.exchange(server, contract, coverage, method, target, route: route, headers: headers, body: body)
        }
        let clock = StoreKind.memory.testClock()
        let small = ["SALE_ITEMS": "6", "USER_LIMIT": "2", "HOLD_TTL": "30"]
        try await withServer(environment: small, clock: clock.function) { (server: RunningServer) async throws in
            let held = try await send(server, "POST", "/checkout?user_id=alice&id=1", route: "/checkout")
            let code = try #require(held.string("code"))
            let sale = try #require(held.int("sale_id"))
            let second = try #require(try await send(server, "POST", "/checkout?user_id=alice&id=2", route: "/checkout").string("code"))
            #expect(try await send(server, "POST", "/checkout?user_id=alice&id=3", route: "/checkout").status == 403)
            #expect(try await send(server, "POST", "/checkout?user_id=bob&id=1", route: "/checkout").status == 409)
            #expect(try await send(server, "POST", "/purchase?code=\(code)", route: "/purchase").status == 200)
            let unknown = "\(sale).4.AAAAAAAAAAAAAAAAAAAAAA"
            #expect(try await send(server, "POST", "/purchase?code=\(unknown)", route: "/purchase").status == 404)
            clock.advance(.seconds(31))
            #expect(try await send(server, "POST", "/purchase?code=\(second)", route: "/purchase").status == 410)
            for (path, bad) in [("/checkout", "?user_id=alice"), ("/purchase", "?code=x")] {
                #expect(try await send(server, "POST", path + bad, route: path).status == 400)
                #expect(try await send(server, "GET", path + bad, route: path).status == 405)
                let tooLong = try await send(server, "POST", path + "?pad=" + String(repeating: "x", count: 17_000), route: path)
                #expect(tooLong.status == 414)
                let tooLarge = try await send(server, "POST", path + bad, route: path, body: [UInt8](repeating: 0x20, count: 70_000))
                #expect(tooLarge.status == 413)
                let expect = try await send(server, "POST", path + bad, route: path, headers: [("Expect", "200-ok")], body: Array("12345".utf8))
                #expect(expect.status == 417)
            }
            let gets: [(target: String, route: String)] = [
                ("/sale", "/sale"), ("/sales/\(sale)/items/1", "/sales/{sale}/items/{item}"),
                ("/sales/\(sale)/items/2", "/sales/{sale}/items/{item}"),
                ("/sales/\(sale)/items/1/image.svg", "/sales/{sale}/items/{item}/image.svg"),
                ("/users/alice/purchases?sale=\(sale)", "/users/{user}/purchases"), ("/users/alice/purchases", "/users/{user}/purchases"),
                ("/health", "/health"), ("/metrics", "/metrics"), ("/openapi.yaml", "/openapi.yaml"), ("/", "/"), ("/live", "/live"),
            ]
            for (target, route) in gets {
                #expect(try await send(server, "GET", target, route: route).status == 200, "\(target)")
                let path = String(target.prefix { $0 != "?" })
                #expect(try await send(server, "GET", path + "?nope=1", route: route).status == 400, "\(target)")
                #expect(try await send(server, "POST", path, route: route).status == 405, "\(target)")
            }
            #expect(try await send(server, "GET", "/sales/x/items/1", route: "/sales/{sale}/items/{item}").status == 400)
            #expect(try await send(server, "GET", "/users/al%2/purchases", route: "/users/{user}/purchases").status == 400)
        }
        // Identity: 401 without proof; the token and the gateway header as documented.
        try await withServer(environment: IdentityTests.signed, clock: clock.function) { (server: RunningServer) async throws in
            #expect(try await send(server, "POST", "/checkout?user_id=alice&id=1", route: "/checkout").status == 401)
            #expect(try await send(server, "GET", "/users/alice/purchases", route: "/users/{user}/purchases").status == 401)
            let token = [("X-User-Token", IdentityTests.token("alice", clock.now))]
            #expect(try await send(server, "POST", "/checkout?user_id=alice&id=1", route: "/checkout", headers: token).status == 200)
            #expect(try await send(server, "GET", "/users/alice/purchases", route: "/users/{user}/purchases", headers: token).status == 200)
        }
        let gateway = ["IDENTITY_MODE": "gateway", "TRUSTED_PROXIES": "127.0.0.1"]
        try await withServer(environment: gateway, clock: clock.function) { (server: RunningServer) async throws in
            let header = [("X-Authenticated-User", "alice")]
            #expect(try await send(server, "POST", "/checkout?user_id=alice&id=1", route: "/checkout", headers: header).status == 200)
            #expect(try await send(server, "GET", "/users/alice/purchases", route: "/users/{user}/purchases", headers: header).status == 200)
        }
        // The per-client limits: 429 with Retry-After.
        let limited = ["CLIENT_CHECKOUT_RATE": "1", "CLIENT_CHECKOUT_BURST": "1"]
        try await withServer(environment: limited, clock: clock.function) { (server: RunningServer) async throws in
            #expect(try await send(server, "POST", "/checkout?user_id=carol&id=1", route: "/checkout").status == 200)
            #expect(try await send(server, "POST", "/checkout?user_id=carol&id=2", route: "/checkout").status == 429)
        }
        // Stores that stop answering: 503 where documented; /live still answers, without a sale.
        let stores = SwitchableStores()
        try await withServer(stores: stores.wired) { (server: RunningServer) async throws in
            let code = try #require(try await send(server, "POST", "/checkout?user_id=dave&id=1", route: "/checkout").string("code"))
            let sale = try #require(code.split(separator: ".").first)
            stores.hotDown.withLock { $0 = true }
            #expect(try await send(server, "POST", "/checkout?user_id=dave&id=2", route: "/checkout").status == 503)
            #expect(try await send(server, "POST", "/purchase?code=\(code)", route: "/purchase").status == 503)
            #expect(try await send(server, "GET", "/sale", route: "/sale").status == 503)
            #expect(try await send(server, "GET", "/sales/\(sale)/items/1", route: "/sales/{sale}/items/{item}").status == 503)
            #expect(try await send(server, "GET", "/health", route: "/health").status == 503)
            #expect(try await send(server, "GET", "/live", route: "/live").json["sale"] is NSNull)
            stores.hotDown.withLock { $0 = false }
            stores.durableDown.withLock { $0 = true }
            #expect(try await send(server, "GET", "/users/dave/purchases", route: "/users/{user}/purchases").status == 503)
            stores.durableDown.withLock { $0 = false }
        }

        #expect(coverage.problems.isEmpty, "\(coverage.problems.joined(separator: "\n"))")
        var documented: Set<String> = [], parameters: Set<String> = []
        for (template, method) in contract.operations {
            for status in try contract.responses(template, method).keys { documented.insert("\(method) \(template) \(status)") }
            for parameter in try contract.parameters(template, method) { parameters.insert("\(method) \(template) \(parameter)") }
        }
        #expect(documented.subtracting(coverage.statuses).isEmpty, "never answered: \(documented.subtracting(coverage.statuses).sorted())")
        #expect(parameters.subtracting(coverage.parameters).isEmpty, "never sent: \(parameters.subtracting(coverage.parameters).sorted())")
    }

    /// The checker itself catches what it must: a wrong type, a missing required property, an
    /// undocumented property, a value outside an enum, a bad date-time, and an unknown keyword.
    @Test func theSchemaCheckerCanFail() throws {
        let contract = try Self.contract()
        let hold = try #require(contract.root["components"]?["schemas"]?["Hold"])
        func problems(_ json: String) throws -> [String] { try contract.problems(try JSONValue.parse(Array(json.utf8)), hold) }
        let good = #"{"code":"1.2.AAAAAAAAAAAAAAAAAAAAAA","sale_id":1,"item_id":2,"expires_at":"2026-12-03T10:00:00Z"}"#
        #expect(try problems(good).isEmpty)
        #expect(try problems(good.replacingOccurrences(of: #""sale_id":1"#, with: #""sale_id":"1""#)).count == 1)
        #expect(try problems(good.replacingOccurrences(of: #","item_id":2"#, with: "")).count == 1)
        #expect(try problems(good.replacingOccurrences(of: "}", with: #","extra":true}"#)).count == 1)
        #expect(try problems(good.replacingOccurrences(of: "2026-12-03T10:00:00Z", with: "yesterday")).count == 1)
        let purchase = try #require(contract.root["components"]?["schemas"]?["Purchase"]?["properties"]?["status"])
        #expect(try contract.problems(.string("maybe"), purchase).count == 1)
        let odd = try OpenAPIContract(yaml: "schema: {type: string, maxLength: 3}")
        #expect(try odd.problems(.string("ab"), try #require(odd.root["schema"])) == ["$: unchecked keyword maxLength"])
    }
}
