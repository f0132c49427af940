import Logging
import Synchronization
import Testing

@testable import Server

/// The server's log handler writes what `StreamLogHandler` would, rendering metadata only then.
struct LogHandlerTests {
    final class Lines: TextOutputStream, Sendable {
        let text = Mutex("")
        func write(_ string: String) { text.withLock { $0 += string } }
    }

    /// A `TextOutputStream` value that appends to shared lines.
    struct Sink: TextOutputStream, Sendable {
        let lines: Lines
        mutating func write(_ string: String) { lines.write(string) }
    }

    @Test("The logger's metadata appears on the lines written, a message's own metadata winning; nothing below the level is written")
    func metadataOnWrittenLines() {
        let lines = Lines()
        var handler = LazyMetadataLogHandler(writingThrough: StreamLogHandler(label: "t", stream: Sink(lines: lines), metadataProvider: nil))
        handler.logLevel = .warning
        var logger = Logger(label: "t") { _ in handler }
        logger[metadataKey: "hb.request.id"] = "abc"
        logger[metadataKey: "route"] = "/checkout"
        logger.info("not written")
        logger.warning("slow store", metadata: ["route": "/purchase"])
        let text = lines.text.withLock { $0 }
        #expect(!text.contains("not written"))
        #expect(text.contains("hb.request.id=abc") && text.contains("route=/purchase") && !text.contains("route=/checkout"))
        #expect(text.contains("slow store"))
    }
}
