import Foundation
import Yams

/// `openapi.yaml` as a real YAML parser (Yams, over libyaml) reads it, and a validator of the
/// answers the running server gives against it: the status must be one the operation documents,
/// the content type one of that response's, and a JSON body must fit the response's schema.
///
/// The schema checker knows the keywords the document uses (`type`, `properties`, `required`,
/// `enum`, `items`, `$ref`, `format: date-time`, `pattern`, `minimum`, `nullable`,
/// `additionalProperties`, `description`) and reports any other as a problem, so a keyword it
/// does not check cannot pass silently. Objects are closed: a property the document does not
/// list is a problem (unless the schema says `additionalProperties`), so the document must
/// describe everything the server sends.
struct OpenAPIContract {
    let root: Node

    init(yaml: String) throws {
        guard let root = try Yams.compose(yaml: yaml) else { throw ContractError("openapi.yaml is empty") }
        self.root = root
    }

    struct ContractError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static let methods = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    /// `node`, with a `$ref` followed (local JSON pointers, repeatedly).
    func resolve(_ node: Node) throws -> Node {
        var current = node
        for _ in 0..<16 {
            guard let ref = current["$ref"]?.string else { return current }
            guard ref.hasPrefix("#/") else { throw ContractError("non-local $ref \(ref)") }
            var target = root
            for token in ref.dropFirst(2).split(separator: "/") {
                let key = token.replacingOccurrences(of: "~1", with: "/").replacingOccurrences(of: "~0", with: "~")
                guard let next = target[key] else { throw ContractError("$ref \(ref) points nowhere") }
                target = next
            }
            current = target
        }
        throw ContractError("$ref cycle at \(node)")
    }

    /// Every documented (path template, upper-case method).
    var operations: [(template: String, method: String)] {
        guard let paths = root["paths"]?.mapping else { return [] }
        return paths.flatMap { key, item -> [(String, String)] in
            guard let template = key.string, let item = item.mapping else { return [] }
            return item.compactMap { method, _ in
                method.string.flatMap { Self.methods.contains($0) ? (template, $0.uppercased()) : nil }
            }
        }
    }

    func operation(_ template: String, _ method: String) -> Node? {
        root["paths"]?[template]?[method.lowercased()]
    }

    /// A parameter of an operation (its own and its path's), resolved.
    struct Parameter: Hashable, CustomStringConvertible {
        let name: String
        let location: String
        let required: Bool
        let schema: Node?

        static func == (a: Parameter, b: Parameter) -> Bool { a.name == b.name && a.location == b.location }
        func hash(into hasher: inout Hasher) { hasher.combine(name); hasher.combine(location) }
        var description: String { "\(location) \(name)" }
    }

    func parameters(_ template: String, _ method: String) throws -> [Parameter] {
        let lists = [root["paths"]?[template]?["parameters"], operation(template, method)?["parameters"]]
        return try lists.compactMap { $0?.sequence }.flatMap { $0 }.map { node in
            let parameter = try resolve(node)
            guard let name = parameter["name"]?.string, let location = parameter["in"]?.string else {
                throw ContractError("\(method) \(template): a parameter without name or in")
            }
            return Parameter(
                name: name, location: location, required: parameter["required"]?.bool ?? false,
                schema: try parameter["schema"].map(resolve))
        }
    }

    /// The documented responses of an operation, by status, resolved.
    func responses(_ template: String, _ method: String) throws -> [String: Node] {
        guard let responses = operation(template, method)?["responses"]?.mapping else { return [:] }
        var result: [String: Node] = [:]
        for (status, response) in responses {
            guard let status = status.string else { continue }
            result[status] = try resolve(response)
        }
        return result
    }

    // MARK: - Schemas

    static let knownKeywords: Set<String> = [
        "type", "properties", "required", "enum", "items", "$ref", "format", "pattern", "minimum", "nullable",
        "additionalProperties", "description",
    ]

    /// The problems of `value` against `schema` (empty when it fits), each naming where.
    func problems(_ value: JSONValue, _ schema: Node, at path: String = "$") throws -> [String] {
        let schema = try resolve(schema)
        guard let keywords = schema.mapping else { return ["\(path): the schema is not a mapping"] }
        var problems: [String] = []
        for (key, _) in keywords {
            if let key = key.string, !Self.knownKeywords.contains(key) { problems.append("\(path): unchecked keyword \(key)") }
        }
        if case .null = value {
            return schema["nullable"]?.bool == true ? problems : problems + ["\(path): null where the schema does not allow it"]
        }
        if let allowed = schema["enum"]?.sequence?.compactMap(\.string), case .string(let text) = value, !allowed.contains(text) {
            problems.append("\(path): \(text) is not one of \(allowed)")
        }
        switch (schema["type"]?.string, value) {
        case ("object", .object(let members)):
            let properties = schema["properties"]?.mapping
            for required in schema["required"]?.sequence?.compactMap(\.string) ?? [] where members[required] == nil {
                problems.append("\(path): required property \(required) is missing")
            }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let property = properties?[name] {
                    problems += try self.problems(member, property, at: "\(path).\(name)")
                } else if let extra = schema["additionalProperties"] {
                    if extra.bool == false { problems.append("\(path): property \(name) is not allowed") }
                    if extra.mapping != nil { problems += try self.problems(member, extra, at: "\(path).\(name)") }
                } else {
                    problems.append("\(path): property \(name) is not in the document")
                }
            }
        case ("array", .array(let elements)):
            guard let items = schema["items"] else { return problems + ["\(path): an array schema without items"] }
            for (index, element) in elements.enumerated() { problems += try self.problems(element, items, at: "\(path)[\(index)]") }
        case ("string", .string(let text)):
            if schema["format"]?.string == "date-time", !Self.isDateTime(text) { problems.append("\(path): \(text) is not a date-time") }
            if let pattern = schema["pattern"]?.string, text.range(of: pattern, options: .regularExpression) == nil {
                problems.append("\(path): \(text) does not match \(pattern)")
            }
        case ("integer", .integer(let number)):
            if let minimum = schema["minimum"]?.int, number < minimum { problems.append("\(path): \(number) is below \(minimum)") }
        case ("number", .integer), ("number", .number), ("boolean", .bool):
            break
        case (nil, _):
            problems.append("\(path): the schema has no type")
        case (let type?, _):
            problems.append("\(path): \(value) is not of type \(type)")
        }
        return problems
    }

    /// RFC 3339 with a time zone (what `format: date-time` means).
    static func isDateTime(_ text: String) -> Bool {
        text.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"#, options: .regularExpression) != nil
    }
}

/// A JSON value as decoded (integers kept apart from other numbers, booleans from numbers).
enum JSONValue: Decodable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    static func parse(_ bytes: [UInt8]) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }

    var description: String {
        switch self {
        case .null: "null"
        case .bool(let value): "\(value)"
        case .integer(let value): "\(value)"
        case .number(let value): "\(value)"
        case .string(let value): "\"\(value)\""
        case .array(let values): "[\(values.count) elements]"
        case .object(let members): "{\(members.keys.sorted().joined(separator: ", "))}"
        }
    }
}
