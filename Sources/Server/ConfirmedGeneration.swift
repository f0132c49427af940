import Engine
import Synchronization

/// The hot store's generation as PostgreSQL last confirmed it to this instance's read endpoints.
///
/// The read endpoints answer from Redis and write nothing, so no fence stops them from answering
/// from a Redis that serves another database or was left behind a rebuild: a snapshot of any other
/// generation is checked against PostgreSQL first (`StatusRules.afterRead`), and the confirmed one
/// is remembered here so that the common case costs no durable read.
final class ConfirmedGeneration: Sendable {
    private let generation = Mutex<Generation?>(nil)

    var value: Generation? {
        get { generation.withLock { $0 } }
        set { generation.withLock { $0 = newValue } }
    }
}
