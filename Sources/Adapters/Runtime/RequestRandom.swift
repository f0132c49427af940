#if canImport(Glibc)
import Glibc
#endif

/// The randomness of one request (its attempt id, its code, its retry jitter): 64 bytes from
/// glibc's `arc4random_buf` (cryptographically secure, fed by the kernel's `getrandom`) in one
/// call, instead of one `getrandom` system call per 8 bytes with `SystemRandomNumberGenerator`.
/// Past those 64 bytes it draws from `SystemRandomNumberGenerator`.
struct RequestRandom: RandomNumberGenerator {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
    private var available = 0
    private var fallback = SystemRandomNumberGenerator()

    init() {
        #if canImport(Glibc)
        let filled = withUnsafeMutableBytes(of: &words) { bytes -> Bool in
            guard let base = bytes.baseAddress else { return false }
            arc4random_buf(base, bytes.count)
            return true
        }
        available = filled ? 8 : 0
        #endif
    }

    mutating func next() -> UInt64 {
        guard available > 0 else { return fallback.next() }
        available -= 1
        return withUnsafeBytes(of: &words) { $0.load(fromByteOffset: available * 8, as: UInt64.self) }
    }
}
