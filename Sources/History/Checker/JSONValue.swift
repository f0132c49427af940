import Engine

/// A small JSON reader and string quoter (the history library stays free of Foundation): enough
/// for one history line, a flat object whose values are numbers, strings, null, booleans and
/// arrays of numbers.
enum JSONValue: Equatable {
    case null
    case bool(Bool)
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    struct ParseError: Error {
        let message: String
    }

    static func parse(_ text: String) throws(ParseError) -> JSONValue {
        var parser = Parser(bytes: Array(text.utf8))
        let value = try parser.value()
        parser.skipSpace()
        guard parser.at == parser.bytes.count else { throw ParseError(message: "trailing characters") }
        return value
    }

    var int: Int64? { if case .number(let n) = self { Int64(n) } else { nil } }
    var string: String? { if case .string(let s) = self { s } else { nil } }

    private struct Parser {
        let bytes: [UInt8]
        var at = 0

        mutating func skipSpace() {
            while at < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[at]) { at += 1 }
        }

        mutating func expect(_ literal: String) throws(ParseError) {
            for byte in literal.utf8 {
                guard at < bytes.count, bytes[at] == byte else { throw ParseError(message: "expected \(literal)") }
                at += 1
            }
        }

        mutating func value() throws(ParseError) -> JSONValue {
            skipSpace()
            guard at < bytes.count else { throw ParseError(message: "unexpected end") }
            switch bytes[at] {
            case UInt8(ascii: "{"):
                at += 1
                var fields: [String: JSONValue] = [:]
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "}") {
                    at += 1
                    return .object(fields)
                }
                while true {
                    skipSpace()
                    let key = try string()
                    skipSpace()
                    try expect(":")
                    fields[key] = try value()
                    skipSpace()
                    guard at < bytes.count else { throw ParseError(message: "unterminated object") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    try expect("}")
                    return .object(fields)
                }
            case UInt8(ascii: "["):
                at += 1
                var items: [JSONValue] = []
                skipSpace()
                if at < bytes.count, bytes[at] == UInt8(ascii: "]") {
                    at += 1
                    return .array(items)
                }
                while true {
                    items.append(try value())
                    skipSpace()
                    guard at < bytes.count else { throw ParseError(message: "unterminated array") }
                    if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
                    try expect("]")
                    return .array(items)
                }
            case UInt8(ascii: "\""):
                return .string(try string())
            case UInt8(ascii: "n"):
                try expect("null")
                return .null
            case UInt8(ascii: "t"):
                try expect("true")
                return .bool(true)
            case UInt8(ascii: "f"):
                try expect("false")
                return .bool(false)
            default:
                let start = at
                while at < bytes.count, "+-0123456789.eE".utf8.contains(bytes[at]) { at += 1 }
                guard at > start else { throw ParseError(message: "unexpected character") }
                return .number(String(decoding: bytes[start..<at], as: UTF8.self))
            }
        }

        mutating func string() throws(ParseError) -> String {
            try expect("\"")
            var out: [UInt8] = []
            while at < bytes.count {
                let byte = bytes[at]
                at += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard at < bytes.count else { throw ParseError(message: "unterminated escape") }
                    let escaped = bytes[at]
                    at += 1
                    switch escaped {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "u"):
                        guard at + 4 <= bytes.count, let scalar = UInt32(String(decoding: bytes[at..<at + 4], as: UTF8.self), radix: 16),
                            let unicode = Unicode.Scalar(scalar)
                        else { throw ParseError(message: "bad \\u escape") }
                        at += 4
                        out += Array(String(Character(unicode)).utf8)
                    default: out.append(escaped)
                    }
                default:
                    out.append(byte)
                }
            }
            throw ParseError(message: "unterminated string")
        }
    }

    /// `s` as a JSON string literal (the escaping the server's answers use).
    static func quoted(_ s: String) -> String { JSONText.quoted(s) }
}
