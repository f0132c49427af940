/// Formats instants as RFC 3339 UTC timestamps with millisecond precision, without Foundation.
public enum RFC3339 {
    /// `2026-11-25T14:55:17.123Z`
    public static func format(_ instant: Instant) -> String {
        let micros = instant.microseconds
        let totalMillis = floorDiv(micros, 1_000)
        let days = floorDiv(totalMillis, 86_400_000)
        let msOfDay = totalMillis - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        let hh = msOfDay / 3_600_000
        let mm = (msOfDay / 60_000) % 60
        let ss = (msOfDay / 1_000) % 60
        let ms = msOfDay % 1_000
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(hh, 2)):\(pad(mm, 2)):\(pad(ss, 2)).\(pad(ms, 3))Z"
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Howard Hinnant's days-to-civil algorithm.
    static func civil(fromDays z0: Int64) -> (Int64, Int64, Int64) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let s = String(value)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
