import ArgumentParser
import Engine
import Foundation
import Testing

@testable import Server

/// The settings are declared once (`ServerSetting.all`): the command line, the help and the documentation all
/// follow that declaration, and a bad value of any setting is refused naming it.
@Suite struct ServerSettingsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test func everyVariableAndFlagIsDeclaredOnce() {
        let variables = ServerSetting.all.map(\.variable)
        let flags = ServerSetting.all.compactMap(\.flag)
        #expect(Set(variables).count == variables.count, "\(variables)")
        #expect(Set(flags).count == flags.count, "\(flags)")
    }

    /// Every declared flag is an option of `sale-server` that reaches its own setting, and `--help` shows each
    /// flag with its variable.
    @Test(arguments: ServerSetting.all.filter { $0.flag != nil }.map(\.variable))
    func everyFlagReachesItsSetting(variable: String) throws {
        let setting = try #require(ServerSetting.all.first { $0.variable == variable })
        let flag = try #require(setting.flag)
        let command = try SaleServerCommand.parse(["--\(flag)", "given"])
        #expect(command.flags == [variable: "given"])
        let help = SaleServerCommand.helpMessage(columns: 10_000)
        #expect(help.contains("--\(flag) <\(flag)>"), "\(help)")
        #expect(help.contains("[\(variable)]"))
    }

    /// No option of `sale-server` is outside the declaration.
    @Test func everyOptionIsDeclared() {
        let help = SaleServerCommand.helpMessage(columns: 10_000)
        let declared = Set(ServerSetting.all.compactMap(\.flag)).union(["help"])
        let shown = help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
            .filter { $0.hasPrefix("--") }.map { String($0.dropFirst(2)) }
        #expect(!shown.isEmpty)
        #expect(Set(shown).subtracting(declared).isEmpty, "\(Set(shown).subtracting(declared))")
    }

    /// A secret has no flag: a command line is visible to every local user.
    @Test func theSecretIsEnvironmentOnly() throws {
        #expect(ServerSetting.identitySecret.flag == nil)
        #expect(throws: (any Error).self) { try SaleServerCommand.parse(["--identity-secret", "x"]) }
    }

    /// The configuration table of docs/server.md is the declarations' rendering, row for row.
    @Test func theDocumentedTableIsTheDeclaration() throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("docs/server.md"), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let heading = try #require(lines.firstIndex(of: "## Configuration"))
        let first = try #require(lines[heading...].firstIndex { $0.hasPrefix("| Variable |") })
        let table = lines[first...].prefix { $0.hasPrefix("|") }.joined(separator: "\n")
        #expect(table == ServerSetting.markdownTable, "docs/server.md's table should read:\n\(ServerSetting.markdownTable)")
    }

    /// Every declared default is the value a configuration without settings has.
    @Test func theDocumentedDefaultsAreTheConfigurationsDefaults() throws {
        let config = try ServerConfiguration.resolve(flags: [:], environment: [:])
        #expect(config == ServerConfiguration())
        #expect(ServerSetting.port.defaultText == "`8032`" && ServerSetting.holdTTL.defaultText == "`60`")
        #expect(ServerSetting.clockSkewAllowance.defaultText == "`2000`" && ServerSetting.logLevel.defaultText == "`info`")
        #expect(ServerSetting.shutdownGrace.defaultText == "`10`" && ServerSetting.identityMode.defaultText == "`trust`")
    }

    /// A value that is not allowed stops the start with a message naming the setting as it was given
    /// (flag or variable) and the value.
    @Test(arguments: [
        ("PORT", "port", "-1"), ("SALE_LENGTH", "sale-length", "1h"), ("LOG_LEVEL", "log-level", "chatty"),
        ("IDENTITY_MODE", "identity-mode", "nobody"), ("TRUSTED_PROXIES", "trusted-proxies", "10.0.0.0/99"),
        ("IDENTITY_HEADER", "identity-header", "Host"), ("CATALOG_SEED", "catalog-seed", "-1"),
    ])
    func badValuesNameTheirSetting(variable: String, flag: String, value: String) {
        for (flags, environment, source) in [([variable: value], [:], "--\(flag)"), ([:], [variable: value], variable)] {
            do {
                _ = try ServerConfiguration.resolve(flags: flags, environment: environment)
                Issue.record("\(source)=\(value) was accepted")
            } catch {
                #expect(error.message.hasPrefix(source), "\(error.message)")
                #expect(error.message.contains(value), "\(error.message)")
            }
        }
    }

    @Test func markdownReadsAsPlainTextInTheHelp() {
        #expect(ServerSetting.plain("`0` turns it off ([abuse limits](#abuse-limits)) [x]") == "0 turns it off (abuse limits) [x]")
    }
}
