import Engine
import Foundation
import Testing

@testable import Server

/// Keeps `openapi.yaml` true: its paths and methods are exactly the server's routes, and its
/// error-code list is exactly the codes the engine and the server can answer.
@Suite struct OpenAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func document() throws -> [String] {
        try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8).components(separatedBy: "\n")
    }

    /// `path → methods` from the `paths:` section (two-space indented paths, four-space methods).
    static func paths(_ lines: [String]) -> [String: Set<String>] {
        var result: [String: Set<String>] = [:]
        var inPaths = false
        var current: String?
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        for line in lines {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:"; current = nil; continue }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   "), line.hasSuffix(":") {
                current = String(line.dropFirst(2).dropLast())
                result[current!] = []
            } else if let path = current, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if line.hasSuffix(":"), methods.contains(String(key)) { result[path, default: []].insert(key.uppercased()) }
            }
        }
        return result
    }

    /// The error codes listed in `components.schemas.Error`.
    static func listedCodes(_ lines: [String]) -> Set<String> {
        guard let errorStart = lines.firstIndex(of: "    Error:") else { return [] }
        var codes: Set<String> = []
        var inEnum = false
        for line in lines[errorStart...] {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed == "enum:" { inEnum = true; continue }
            guard inEnum else { continue }
            if trimmed.hasPrefix("#") { continue }
            if trimmed.hasPrefix("- ") { codes.insert(String(trimmed.dropFirst(2))); continue }
            break
        }
        return codes
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
                    codes.insert(String(text[Range(match.range(at: 1), in: text)!]))
                }
            }
        }
        return codes
    }

    @Test func pathsMatchTheRouter() throws {
        let documented = Self.paths(try Self.document())
        let served = Dictionary(uniqueKeysWithValues: RouteTable.server.routes.map { ($0.template, Set($0.methods)) })
        #expect(documented == served)
    }

    @Test func everyErrorCodeIsListed() throws {
        let listed = Self.listedCodes(try Self.document())
        let engine = try Self.engineCodes()
        #expect(engine.count >= 19, "found \(engine.sorted())")
        for code in CheckoutOutcome.allCases where code != .held { #expect(engine.contains(code.rawValue)) }
        let server = Set(APIError.serverCodes.map(\.code))
        #expect(engine.union(server).subtracting(listed).isEmpty, "missing from openapi.yaml: \(engine.union(server).subtracting(listed))")
        #expect(listed.subtracting(engine.union(server)).isEmpty, "stale in openapi.yaml: \(listed.subtracting(engine.union(server)))")
    }
}
