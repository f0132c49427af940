import Engine

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address as bytes (4 or 16), parsed strictly; IPv4-mapped IPv6 addresses
/// (`::ffff:a.b.c.d`, what a dual-stack listener reports) are taken as the IPv4 address.
struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    let bytes: [UInt8]

    init?<S: StringProtocol>(_ text: S) {
        let string = String(text)
        guard !string.isEmpty, string.utf8.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, string, &v4) == 1 {
            bytes = withUnsafeBytes(of: &v4) { Array($0) }
            return
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, string, &v6) == 1 else { return nil }
        let raw = withUnsafeBytes(of: &v6) { Array($0) }
        if raw[0..<10].allSatisfy({ $0 == 0 }) && raw[10] == 0xff && raw[11] == 0xff {
            bytes = Array(raw[12..<16])
        } else {
            bytes = raw
        }
    }

    /// Canonical text (`inet_ntop`), the form used in client keys and logs.
    var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        var copy = bytes
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, &copy, &buffer, socklen_t(buffer.count)) != nil else { return "invalid" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// An address as written in `X-Forwarded-For`: bare, or with a port (`a.b.c.d:p`, `[v6]:p`).
    static func forwarded<S: StringProtocol>(_ text: S) -> IPAddress? {
        let trimmed = text.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed()
        let entry = String(trimmed)
        if let plain = IPAddress(entry) { return plain }
        if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
            return IPAddress(entry[entry.index(after: entry.startIndex)..<close])
        }
        if entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") {
            return IPAddress(entry[..<colon]).flatMap { $0.bytes.count == 4 ? $0 : nil }
        }
        return nil
    }
}

/// The proxies (addresses or CIDR ranges) whose `X-Forwarded-For` the server believes
/// (`TRUSTED_PROXIES`). Anyone can write that header, so it is honoured only when the connection
/// comes from one of these; by default none is trusted and the client is the connection's peer.
struct TrustedProxies: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        let network: [UInt8]
        let prefix: Int

        func contains(_ address: IPAddress) -> Bool {
            guard address.bytes.count == network.count else { return false }
            var bits = prefix
            for (a, b) in zip(address.bytes, network) {
                if bits <= 0 { return true }
                let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
                if a & mask != b & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    private(set) var ranges: [Range] = []

    init() {}

    /// Parses a comma-separated list of addresses and CIDR ranges (`10.0.0.0/8, ::1, 192.0.2.7`).
    init(list: String) throws(ConfigurationError) {
        for part in list.split(separator: ",") {
            let entry = String(part).trimmingSpaces
            if entry.isEmpty { continue }
            let pieces = entry.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count <= 2, let address = IPAddress(pieces[0]) else {
                throw ConfigurationError("'\(entry)' is not an IP address or a CIDR range (like 10.0.0.0/8)")
            }
            let width = address.bytes.count * 8
            var prefix = width
            if pieces.count == 2 {
                guard let bits = Int(pieces[1]), (0...width).contains(bits), pieces[1].utf8.count <= 3 else {
                    throw ConfigurationError("'\(entry)': the prefix length must be 0 to \(width)")
                }
                prefix = bits
            }
            ranges.append(Range(network: address.bytes, prefix: prefix))
        }
    }

    var isEmpty: Bool { ranges.isEmpty }

    func contains(_ address: IPAddress) -> Bool { ranges.contains { $0.contains(address) } }

    /// The client's address: the connection's peer, or, when the peer is a trusted proxy, the
    /// nearest address in `X-Forwarded-For` (read right to left) that is not a trusted proxy. An
    /// entry that is not an address stops the walk (everything left of it was written by whoever
    /// the proxy talked to, so the last good address is kept). Nil when the peer is unknown.
    func clientAddress(peer: IPAddress?, forwardedFor values: [String]) -> IPAddress? {
        guard var client = peer else { return nil }
        guard contains(client) else { return client }
        let entries = values.flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }
        for entry in entries.reversed() {
            guard let address = IPAddress.forwarded(entry) else { break }
            client = address
            if !contains(address) { break }
        }
        return client
    }
}
