#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A value behind an adaptive pthread mutex: a contended lock spins briefly before it sleeps.
///
/// The instance runtime's critical sections are a few hundred nanoseconds, taken by the event
/// loops and the connection threads alike. The standard library's `Mutex` is a priority-inheritance
/// futex on Linux: every contended acquisition went through the kernel, and the flood's profile
/// showed threads queuing there (`_lockSlow`, `rt_mutex_slowlock`). An adaptive mutex usually gets
/// the lock while spinning instead.
final class AdaptiveLock<Value>: @unchecked Sendable {
    private var value: Value
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        #if canImport(Glibc)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_ADAPTIVE_NP))
        #endif
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` with the value, under the lock. `@unchecked Sendable`: the value is only ever
    /// touched here.
    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
