import Logging

/// The server's log handler: `StreamLogHandler`'s lines on standard error, with the logger's
/// metadata rendered only when a line is written.
///
/// `StreamLogHandler` renders its metadata again at every change, and every request sets its id on
/// its logger, so at the usual levels, where nothing is logged per request, that rendering was
/// spent for nothing on every request (about 2.5 % of the server's CPU in the flood's profile,
/// docs/bench.md).
struct LazyMetadataLogHandler: LogHandler {
    private var stream: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String) {
        stream = StreamLogHandler.standardError(label: label)
    }

    /// Writes through `stream` (tests).
    init(writingThrough stream: StreamLogHandler) {
        self.stream = stream
    }

    var logLevel: Logger.Level {
        get { stream.logLevel }
        set { stream.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { stream.metadataProvider }
        set { stream.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            // A message's own metadata wins over the logger's, as in StreamLogHandler.
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        stream.log(event: event)
    }
}
