import Engine

/// One setting of `sale-server`, declared once (`ServerSetting.all`): its environment variable, its
/// flag, its default, the values it allows and what it means. The configuration is read from these
/// declarations alone (`ServerConfiguration.resolve`); `sale-server --help` and the configuration
/// table of docs/server.md are rendered from them (a test holds the document to the rendering).
struct ServerSetting: Sendable {
    /// The environment variable: `PORT`.
    let variable: String
    /// The long flag without its dashes (`port`); nil for a setting read from the environment only
    /// (a secret: a command line is visible to every local user in `ps`).
    let flag: String?
    /// The allowed values, for people (docs/server.md's table, `--help`).
    let allowed: String
    /// What the setting does, in Markdown (backticks, links into docs/server.md).
    let meaning: String
    /// The default as docs/server.md shows it: a literal in backticks, or words (`unset`).
    let defaultText: String
    private let assign: @Sendable (_ text: String, _ source: String, _ config: inout ServerConfiguration) throws(ConfigurationError) -> Void

    /// A setting whose default is the value `ServerConfiguration()` has at `keyPath`.
    init<Value>(
        _ variable: String, flag: String?, _ value: SettingValue<Value>,
        into keyPath: WritableKeyPath<ServerConfiguration, Value> & Sendable, meaning: String
    ) {
        self.init(variable, flag: flag, value, meaning: meaning, defaultText: "`\(value.show(ServerConfiguration()[keyPath: keyPath]))`") {
            $0[keyPath: keyPath] = $1
        }
    }

    /// A setting with no value of its own by default: `defaultText` says what happens then.
    init<Value>(
        _ variable: String, flag: String?, _ value: SettingValue<Value>,
        into keyPath: WritableKeyPath<ServerConfiguration, Value?> & Sendable, meaning: String, defaultText: String
    ) {
        self.init(variable, flag: flag, value, meaning: meaning, defaultText: defaultText) { $0[keyPath: keyPath] = $1 }
    }

    /// A setting stored by `store`; `defaultText` is the default as docs/server.md shows it.
    init<Value>(
        _ variable: String, flag: String?, _ value: SettingValue<Value>, meaning: String, defaultText: String,
        store: @escaping @Sendable (inout ServerConfiguration, Value) -> Void
    ) {
        self.variable = variable
        self.flag = flag
        self.allowed = value.allowed
        self.meaning = meaning
        self.defaultText = defaultText
        self.assign = { (text: String, source: String, config: inout ServerConfiguration) throws(ConfigurationError) in
            let parsed: Value?
            do throws(ConfigurationError) {
                parsed = try value.parse(text)
            } catch {
                throw ConfigurationError("\(source): \(error.message)")
            }
            guard let parsed else { throw ConfigurationError("\(source) must be \(value.requirement), got '\(text)'") }
            store(&config, parsed)
        }
    }

    /// Sets this setting in `config` from `text`, given as `source` (its flag or its variable).
    /// - Throws: `ConfigurationError` naming `source` and the bad text.
    func apply(_ text: String, from source: String, to config: inout ServerConfiguration) throws(ConfigurationError) {
        try assign(text, source, &config)
    }

    /// The line of `sale-server --help`: the meaning without Markdown, the variable and the default.
    var help: String {
        "\(Self.plain(meaning)) [\(variable)] (default \(Self.plain(defaultText)); \(Self.plain(allowed)))"
    }

    /// Markdown as plain text: code spans without their backticks, links as their text.
    static func plain(_ markdown: String) -> String {
        var result = ""
        var rest = Substring(markdown)
        while let open = rest.firstIndex(of: "[") {
            result += rest[..<open]
            let afterOpen = rest.index(after: open)
            guard let close = rest[afterOpen...].firstIndex(of: "]"), rest[close...].dropFirst().first == "(",
                let end = rest[close...].firstIndex(of: ")")
            else {
                result += "["
                rest = rest[afterOpen...]
                continue
            }
            result += rest[afterOpen..<close]
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return result.replacingBackticks()
    }
}

extension String {
    fileprivate func replacingBackticks() -> String { String(filter { $0 != "`" }) }
}
