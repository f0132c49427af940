import Foundation
import Testing

@testable import Server

/// A strict parser of the Prometheus text exposition format (version 0.0.4), enough to hold
/// `/metrics` to it: comment lines, sample lines with escaped label values, families declared
/// once and kept together.
struct Exposition {
    struct Family {
        var help: String?
        var type: String?
        var samples: [Sample] = []
    }

    struct Sample: Hashable {
        let name: String
        let labels: [String: String]
        let value: Double
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    var families: [String: Family] = [:]
    var order: [String] = []

    static func isMetricName(_ s: Substring) -> Bool {
        guard let first = s.first, first.isASCII, first.isLetter || first == "_" || first == ":" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }

    static func isLabelName(_ s: Substring) -> Bool {
        guard let first = s.first, first.isASCII, first.isLetter || first == "_" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    static func value(_ s: Substring) -> Double? {
        switch s {
        case "+Inf": .infinity
        case "-Inf": -.infinity
        case "NaN": .nan
        default: Double(s)
        }
    }

    /// The family a sample belongs to: histogram and summary samples carry suffixes.
    func family(of sample: String) -> String? {
        if families[sample] != nil { return sample }
        for suffix in ["_bucket", "_sum", "_count"] where sample.hasSuffix(suffix) {
            let base = String(sample.dropLast(suffix.count))
            if let type = families[base]?.type, type == "histogram" || type == "summary" { return base }
        }
        return nil
    }

    init(parsing text: String) throws {
        guard text.isEmpty || text.hasSuffix("\n") else { throw Failure(description: "the exposition must end with a newline") }
        var current: String?
        var finished: Set<String> = []
        func enter(_ name: String, line: String) throws {
            if current == name { return }
            if let current { finished.insert(current) }
            guard !finished.contains(name) else { throw Failure(description: "family \(name) is split: \(line)") }
            current = name
            if families[name] == nil {
                families[name] = Family()
                order.append(name)
            }
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            let line = String(raw)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
                guard parts.count >= 3, parts[1] == "HELP" || parts[1] == "TYPE" else { continue }  // a plain comment
                guard Self.isMetricName(parts[2]) else { throw Failure(description: "bad metric name: \(line)") }
                let name = String(parts[2])
                try enter(name, line: line)
                let rest = parts.count > 3 ? String(parts[3]) : ""
                if parts[1] == "HELP" {
                    guard families[name]?.help == nil else { throw Failure(description: "second HELP: \(line)") }
                    families[name]?.help = rest
                } else {
                    guard families[name]?.type == nil, families[name]?.samples.isEmpty == true else {
                        throw Failure(description: "TYPE repeated or after samples: \(line)")
                    }
                    guard ["counter", "gauge", "histogram", "summary", "untyped"].contains(rest) else {
                        throw Failure(description: "unknown type: \(line)")
                    }
                    families[name]?.type = rest
                }
                continue
            }
            let sample = try Self.sample(line)
            guard let name = family(of: sample.name) else { throw Failure(description: "sample of no declared family: \(line)") }
            try enter(name, line: line)
            guard families[name]?.samples.contains(where: { $0.name == sample.name && $0.labels == sample.labels }) == false else {
                throw Failure(description: "duplicate series: \(line)")
            }
            families[name]?.samples.append(sample)
        }
    }

    /// `name{a="x",b="y"} value [timestamp]`.
    static func sample(_ line: String) throws -> Sample {
        var rest = line[...]
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let name = rest[..<nameEnd]
        guard isMetricName(name) else { throw Failure(description: "bad sample name: \(line)") }
        rest = rest[nameEnd...]
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                guard let eq = rest.firstIndex(of: "=") else { throw Failure(description: "bad labels: \(line)") }
                let label = rest[..<eq]
                guard isLabelName(label), labels[String(label)] == nil else { throw Failure(description: "bad label name: \(line)") }
                rest = rest[rest.index(after: eq)...]
                guard rest.first == "\"" else { throw Failure(description: "unquoted label value: \(line)") }
                rest = rest.dropFirst()
                var value = ""
                while true {
                    guard let c = rest.first else { throw Failure(description: "unterminated label value: \(line)") }
                    rest = rest.dropFirst()
                    if c == "\"" { break }
                    if c == "\\" {
                        guard let escaped = rest.first, ["\\", "\"", "n"].contains(escaped) else {
                            throw Failure(description: "bad escape: \(line)")
                        }
                        value.append(escaped == "n" ? "\n" : escaped)
                        rest = rest.dropFirst()
                    } else {
                        guard c != "\n" else { throw Failure(description: "raw newline in a label value: \(line)") }
                        value.append(c)
                    }
                }
                labels[String(label)] = value
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" {
                    throw Failure(description: "expected , or }: \(line)")
                }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw Failure(description: "no value: \(line)") }
        let fields = rest.dropFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard (1...2).contains(fields.count), let value = value(fields[0]) else { throw Failure(description: "bad value: \(line)") }
        if fields.count == 2, Int64(fields[1]) == nil { throw Failure(description: "bad timestamp: \(line)") }
        return Sample(name: String(name), labels: labels, value: value)
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        family(of: name).flatMap { families[$0]?.samples.first { $0.name == name && $0.labels == labels }?.value }
    }
}

/// `/metrics` follows the Prometheus conventions: `# HELP` and `# TYPE` on every family,
/// `_total` exactly on counters, units in names, and every documented series there from the start.
@Suite struct MetricsConventionsTests {
    static func checkConventions(_ exposition: Exposition) {
        for name in exposition.order {
            let family = exposition.families[name] ?? .init()
            #expect(family.help?.isEmpty == false, "\(name) has no HELP")
            #expect(family.type != nil, "\(name) has no TYPE")
            #expect((family.type == "counter") == name.hasSuffix("_total"), "\(name) is a \(family.type ?? "?"): _total only on counters")
            if family.type == "histogram" {
                #expect(name.hasSuffix("_seconds") || name.hasSuffix("_bytes"), "histogram \(name) names its unit")
                let buckets = family.samples.filter { $0.name == name + "_bucket" }
                #expect(buckets.allSatisfy { $0.labels["le"] != nil } && !buckets.isEmpty)
            }
            #expect(ServerMetrics.help[name] != nil, "\(name) is not documented in ServerMetrics.help")
        }
    }

    @Test func everyDocumentedSeriesIsThereAtZeroFromTheStart() async throws {
        try await withServer { server in
            let reply = try await server.get("/metrics")
            #expect(reply.header("content-type") == "text/plain; version=0.0.4; charset=utf-8")
            let exposition = try Exposition(parsing: reply.text)
            Self.checkConventions(exposition)
            var expected: [(String, [String: String])] = [
                ("sale_hot_store_rebuilds_total", [:]), ("sale_reconciled_purchases_total", [:]),
                ("sale_client_limit_untracked_total", [:]), ("sale_client_limit_tracked_clients", [:]),
                ("sale_guessed_commits_total", ["result": "committed"]), ("sale_guessed_commits_total", ["result": "refused"]),
                ("sale_client_limit_refusals_total", ["reason": "rate_limited"]),
                ("sale_client_limit_refusals_total", ["reason": "too_many_holds"]),
                ("sale_items", [:]), ("sale_items_sold", [:]), ("sale_items_held", [:]), ("sale_current_id", [:]),
            ]
            for (store, operations) in ServerMetrics.storeOperations {
                for operation in operations {
                    for kind in ["timeout", "unavailable"] {
                        expected.append(("sale_store_errors_total", ["store": store, "operation": operation, "kind": kind]))
                    }
                }
            }
            for (name, labels) in expected {
                let value = exposition.value(name, labels)
                #expect(value != nil, "\(name)\(labels) missing at start")
                if name.hasSuffix("_total") && name != "sale_hot_store_rebuilds_total" {
                    #expect(value == 0, "\(name)\(labels) = \(value ?? -1) at start")
                }
            }
            #expect(exposition.value("sale_reconcile_runs_total", ["result": "ok"]) != nil)
            #expect(exposition.value("sale_reconcile_runs_total", ["result": "failed"]) == 0)
            #expect(exposition.value("sale_items") == 10_000)
            #expect(exposition.families["sale_items_total"] == nil, "a gauge must not end in _total")
        }
    }

    /// After traffic of every kind (label values with quotes and backslashes included), the
    /// exposition still parses and keeps the conventions.
    @Test func conventionsHoldAfterTraffic() async throws {
        try await withServer(environment: ["CLIENT_MAX_HOLDS": "1", "CLIENT_CHECKOUT_RATE": "10"]) { server in
            _ = try await server.checkout("a", 1)
            _ = try await server.checkout("a", 2)  // 429
            _ = try await server.get("/nope")
            _ = try await server.request("PUT", "/sale")
            _ = try await server.post("/purchase?code=x")
            _ = try await server.get("/sales/1/items/1/image.svg")
            let exposition = try Exposition(parsing: try await server.get("/metrics").text)
            Self.checkConventions(exposition)
            let refused = ["route": "/checkout", "method": "POST", "status": "429", "outcome": "too_many_holds"]
            #expect(exposition.value("http_requests_total", refused) == 1)
            #expect(exposition.value("http_request_duration_seconds_count", ["route": "/checkout", "outcome": "held"]) == 1)
        }
    }

    @Test func theParserIsStrict() {
        let bad = [
            "x 1",  // no newline at the end
            "# TYPE a counter\na_total 1\n",  // sample of no declared family
            "# TYPE a gauge\na{b=\"c} 1\n",
            "# TYPE a gauge\na{b=\"\\x\"} 1\n",
            "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n",  // split family
            "# TYPE a gauge\na one\n",
            "# TYPE a gauge\n# TYPE a gauge\na 1\n",
        ]
        for text in bad { #expect(throws: Exposition.Failure.self, "\(text)") { try Exposition(parsing: text) } }
        let good = "# HELP a_total A \\\\ thing.\n# TYPE a_total counter\na_total{l=\"q\\\"\\\\\\n\"} 3 1700000000000\n"
        #expect((try? Exposition(parsing: good))?.value("a_total", ["l": "q\"\\\n"]) == 3)
    }
}
