import Engine

/// How the text of one server setting becomes its typed value, and how such a value reads to an
/// operator: the parsing, the validation and the "allowed values" of a setting in one place, so that
/// `sale-server --help`, the error of a bad value and the configuration table of docs/server.md agree.
struct SettingValue<Value>: Sendable {
    /// The allowed values as docs/server.md's table shows them (`1–65,535`, `` `trust`, `signed` ``).
    let allowed: String
    /// What a bad value is told it must be: "an integer from 0 to 65535".
    let requirement: String
    /// The value of a text, nil when it is not one; throws to explain a value that is wrong in a way
    /// of its own (an entry of a list).
    let parse: @Sendable (String) throws(ConfigurationError) -> Value?
    /// The value as an operator writes it, for the default column.
    let show: @Sendable (Value) -> String

    /// The same text read as another type (seconds as a duration), shown back through `back`.
    func map<Other>(_ forth: @escaping @Sendable (Value) -> Other, back: @escaping @Sendable (Other) -> Value) -> SettingValue<Other> {
        let parse = self.parse
        let show = self.show
        return SettingValue<Other>(
            allowed: allowed, requirement: requirement,
            parse: { (text: String) throws(ConfigurationError) -> Other? in try parse(text).map(forth) },
            show: { show(back($0)) })
    }
}

extension SettingValue where Value == Int {
    /// A whole number in `range` (spaces around it ignored); `unit` is said after "integer", in brackets.
    static func integer(_ range: ClosedRange<Int>, unit: String? = nil) -> SettingValue<Int> {
        let bracket = unit.map { " (\($0))" } ?? ""
        return SettingValue(
            allowed: "\(grouped(range.lowerBound))–\(grouped(range.upperBound))\(bracket)",
            requirement: "an integer\(bracket) from \(range.lowerBound) to \(range.upperBound)",
            parse: { text in Int(text.trimmingSpaces).flatMap { range.contains($0) ? $0 : nil } },
            show: { "\($0)" })
    }

    /// 1234567 as "1,234,567".
    private static func grouped(_ number: Int) -> String {
        var digits = String(number.magnitude)
        var groups: [Substring] = []
        while digits.count > 3 {
            groups.insert(Substring(digits.suffix(3)), at: 0)
            digits.removeLast(3)
        }
        groups.insert(Substring(digits), at: 0)
        return (number < 0 ? "-" : "") + groups.joined(separator: ",")
    }
}

extension SettingValue where Value == TimeSpan {
    /// Seconds (a whole number) in `range`, read as the engine's time span.
    static func seconds(_ range: ClosedRange<Int>) -> SettingValue<TimeSpan> {
        SettingValue<Int>.integer(range, unit: "seconds").map({ TimeSpan.seconds(Int64($0)) }, back: { Int($0.microseconds / 1_000_000) })
    }

    /// Milliseconds (a whole number) in `range`, read as the engine's time span.
    static func milliseconds(_ range: ClosedRange<Int>) -> SettingValue<TimeSpan> {
        SettingValue<Int>.integer(range, unit: "milliseconds").map({ TimeSpan.milliseconds(Int64($0)) }, back: { Int($0.microseconds / 1_000) })
    }
}

extension SettingValue where Value == Duration {
    /// Seconds (a whole number) in `range`, read as a standard duration.
    static func seconds(_ range: ClosedRange<Int>) -> SettingValue<Duration> {
        SettingValue<Int>.integer(range, unit: "seconds").map({ Duration.seconds($0) }, back: { Int($0.components.seconds) })
    }
}

extension SettingValue where Value == String {
    /// Any non-empty text, taken as given; `allowed` says what it should be.
    static func text(_ allowed: String) -> SettingValue<String> {
        SettingValue(allowed: allowed, requirement: allowed, parse: { $0 }, show: { $0 })
    }
}

extension SettingValue where Value: CaseIterable & RawRepresentable & Sendable, Value.RawValue == String {
    /// One of the cases' names, in any case, spaces around it ignored.
    static var oneOf: SettingValue<Value> {
        let cases = Array(Value.allCases)
        let names = cases.map(\.rawValue)
        return SettingValue(
            allowed: names.map { "`\($0)`" }.joined(separator: ", ") + " (any case)",
            requirement: "one of \(names.joined(separator: ", "))",
            parse: { text in
                let name = String(text.trimmingSpaces.lowercased())
                return cases.first { $0.rawValue == name }
            },
            show: { $0.rawValue })
    }
}

extension String {
    /// The text without the spaces around it (the only white space an operator types by accident).
    var trimmingSpaces: Substring {
        var s = self[...]
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
