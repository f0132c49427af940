import Engine
import Foundation
import Testing

@testable import Server

/// `IDENTITY_MODE` over real HTTP: `signed` (HMAC tokens from the storefront) and `gateway` (a
/// header from trusted addresses); in both, no valid proof is `401` on checkout and on a user's
/// purchases.
@Suite struct IdentityTests {
    static let secret = "storefront-and-server-share-this-32+bytes"
    static let signed = ["IDENTITY_MODE": "signed", "IDENTITY_SECRET": secret]

    /// A token as the storefront makes it, valid for `seconds` from the server's clock `now`.
    static func token(_ user: String, _ now: Instant, valid seconds: Int64 = 300, secret: String = secret) -> String {
        let expiry = now.microseconds / 1_000_000 + seconds
        return IdentityVerifier.token(user: UserID(unchecked: user), expiry: expiry, secret: Array(secret.utf8))
    }

    static func checkout(_ server: RunningServer, _ user: String, _ item: Int, token: String?, from: String? = nil) async throws -> HTTPReply {
        try await server.request(
            "POST", "/checkout?user_id=\(user)&id=\(item)", headers: token.map { [("X-User-Token", $0)] } ?? [], from: from)
    }

    static func expect401(_ reply: HTTPReply, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(reply.status == 401 && reply.errorCode == code, "\(reply)", sourceLocation: sourceLocation)
        #expect(reply.header("www-authenticate")?.contains("realm=\"flash-sale\"") == true, sourceLocation: sourceLocation)
    }

    @Test func signedTokens() async throws {
        let clock = StoreKind.memory.testClock()
        try await withServer(environment: Self.signed, clock: clock.function) { server in
            let now = clock.now
            let alice = Self.token("alice", now)
            // Valid: checkout, and the user's own purchases.
            let held = try await Self.checkout(server, "alice", 1, token: alice)
            #expect(held.status == 200, "\(held)")
            #expect(try await server.purchase(try #require(held.string("code"))).status == 200)  // the code is the proof
            let mine = try await server.request("GET", "/users/alice/purchases", headers: [("X-User-Token", alice)])
            #expect(mine.status == 200 && (mine.json["purchases"] as? [Any])?.count == 1, "\(mine)")
            // A user id with dots signs and verifies too (the token splits at its last two dots).
            #expect(try await Self.checkout(server, "a.b.c", 2, token: Self.token("a.b.c", now)).status == 200)

            // Missing.
            Self.expect401(try await Self.checkout(server, "alice", 3, token: nil), "identity_required")
            Self.expect401(try await server.get("/users/alice/purchases"), "identity_required")
            // Wrong user: a valid token of bob, acting for alice.
            let bob = Self.token("bob", now)
            Self.expect401(try await Self.checkout(server, "alice", 3, token: bob), "identity_mismatch")
            Self.expect401(try await server.request("GET", "/users/alice/purchases", headers: [("X-User-Token", bob)]), "identity_mismatch")
            // Forged: signed with another secret; or alice's signature on another user or expiry.
            let forged = Self.token("alice", now, secret: "an-attacker-guessing-the-secret-badly")
            Self.expect401(try await Self.checkout(server, "alice", 3, token: forged), "identity_invalid")
            let parts = alice.split(separator: ".")
            Self.expect401(try await Self.checkout(server, "mallory", 3, token: "mallory.\(parts[1]).\(parts[2])"), "identity_invalid")
            let later = (Int(parts[1]) ?? 0) + 9_999
            Self.expect401(try await Self.checkout(server, "alice", 3, token: "alice.\(later).\(parts[2])"), "identity_invalid")
            // Malformed.
            for token in ["", "alice", "alice.123", "alice.x.\(parts[2])", "alice.\(parts[1]).not!base64", "alice.\(parts[1]).AAAA",
                          ".\(parts[1]).\(parts[2])", String(repeating: "a", count: 200)] {
                Self.expect401(try await Self.checkout(server, "alice", 3, token: token), "identity_invalid")
            }
            // Two tokens in one request are refused rather than one picked.
            let twice = try await server.request(
                "POST", "/checkout?user_id=alice&id=3", headers: [("X-User-Token", alice), ("X-User-Token", alice)])
            Self.expect401(twice, "identity_invalid")
            // Expired: valid until its expiry second, not after.
            let short = Self.token("alice", now, valid: 10)
            #expect(try await Self.checkout(server, "alice", 4, token: short).status == 200)
            clock.advance(.seconds(10))
            Self.expect401(try await Self.checkout(server, "alice", 5, token: short), "identity_expired")
            Self.expect401(try await server.request("GET", "/users/alice/purchases", headers: [("X-User-Token", short)]), "identity_expired")
            // Input errors still come first, and a 401 is counted like every answer.
            #expect(try await Self.checkout(server, "alice", 0, token: nil).errorCode == "invalid_item_id")
            let metrics = try await server.get("/metrics").text
            #expect(metrics.contains(#"status="401",outcome="identity_required"} 1"#), "\(metrics)")
        }
    }

    /// With identity on, the per-client limits count the verified user, not the address: two
    /// users behind one address each get their share.
    @Test func limitsCountVerifiedUsers() async throws {
        let clock = StoreKind.memory.testClock()
        let environment = Self.signed.merging(["CLIENT_MAX_HOLDS": "1", "CLIENT_CHECKOUT_RATE": "10"]) { $1 }
        try await withServer(environment: environment, clock: clock.function) { server in
            let now = clock.now
            let alice = Self.token("alice", now)
            let bob = Self.token("bob", now)
            let first = try await Self.checkout(server, "alice", 1, token: alice)
            #expect(first.status == 200, "\(first)")
            let second = try await Self.checkout(server, "alice", 2, token: alice)
            #expect(second.errorCode == "too_many_holds", "\(second)")
            let other = try await Self.checkout(server, "bob", 2, token: bob)
            #expect(other.status == 200, "\(other)")
        }
    }

    @Test func gatewayHeaderFromTrustedAddressesOnly() async throws {
        let environment = ["IDENTITY_MODE": "gateway", "TRUSTED_PROXIES": "127.0.0.1", "IDENTITY_HEADER": "X-Gateway-User"]
        try await withServer(environment: environment) { server in
            func checkout(_ user: String, _ item: Int, header: String?, from: String? = nil) async throws -> HTTPReply {
                try await server.request(
                    "POST", "/checkout?user_id=\(user)&id=\(item)", headers: header.map { [("X-Gateway-User", $0)] } ?? [], from: from)
            }
            // Valid: from the gateway, naming the user the request acts for.
            let held = try await checkout("alice", 1, header: "alice")
            #expect(held.status == 200, "\(held)")
            #expect(try await server.purchase(try #require(held.string("code"))).status == 200)
            let mine = try await server.request("GET", "/users/alice/purchases", headers: [("X-Gateway-User", "alice")])
            #expect(mine.status == 200 && (mine.json["purchases"] as? [Any])?.count == 1, "\(mine)")
            // Missing, wrong user, not a user id.
            Self.expect401(try await checkout("alice", 2, header: nil), "identity_required")
            Self.expect401(try await checkout("alice", 2, header: "bob"), "identity_mismatch")
            Self.expect401(try await checkout("alice", 2, header: "al ice"), "identity_invalid")
            Self.expect401(try await server.request("GET", "/users/alice/purchases", headers: [("X-Gateway-User", "bob")]), "identity_mismatch")
            // From an address that is not the gateway: the header is not believed.
            Self.expect401(try await checkout("alice", 2, header: "alice", from: "127.0.0.2"), "untrusted_gateway")
            Self.expect401(try await checkout("alice", 2, header: nil, from: "127.0.0.2"), "identity_required")
            Self.expect401(
                try await server.request("GET", "/users/alice/purchases", headers: [("X-Gateway-User", "alice")], from: "127.0.0.2"),
                "untrusted_gateway")
            // A signed token means nothing in gateway mode.
            Self.expect401(try await Self.checkout(server, "alice", 2, token: Self.token("alice", WallClock.now())), "identity_required")
        }
    }

    /// `trust` (the default) believes `user_id`: anyone may act as anyone, as the contest's API did.
    @Test func trustIsTheDefault() async throws {
        #expect(try ServerConfiguration.resolve(flags: [:], environment: [:]).identity.mode == .trust)
        try await withServer { server in
            let held = try await server.checkout("victim", 1)
            #expect(held.status == 200)
            #expect(try await server.get("/users/victim/purchases").status == 200)
        }
    }

    @Test func settings() throws {
        let signed = try ServerConfiguration.resolve(flags: [:], environment: Self.signed)
        #expect(signed.identity.mode == .signed && signed.identity.secret == Array(Self.secret.utf8))
        let gateway = try ServerConfiguration.resolve(
            flags: ["IDENTITY_MODE": "GATEWAY"], environment: ["TRUSTED_PROXIES": "10.0.0.0/8", "IDENTITY_HEADER": "X-Remote-User"])
        #expect(gateway.identity.mode == .gateway && gateway.identity.gatewayHeader == "X-Remote-User")
    }

    @Test(arguments: [
        ["IDENTITY_MODE": "sometimes"],
        ["IDENTITY_MODE": "signed"],
        ["IDENTITY_MODE": "signed", "IDENTITY_SECRET": "short"],
        ["IDENTITY_MODE": "gateway"],
        ["IDENTITY_MODE": "gateway", "TRUSTED_PROXIES": "127.0.0.1", "IDENTITY_HEADER": "X-Forwarded-For"],
        ["IDENTITY_MODE": "gateway", "TRUSTED_PROXIES": "127.0.0.1", "IDENTITY_HEADER": "bad header"],
    ])
    func badSettings(environment: [String: String]) {
        do {
            _ = try ServerConfiguration.resolve(flags: [:], environment: environment)
            Issue.record("\(environment) was accepted")
        } catch {
            #expect(error.message.contains("IDENTITY_"), "\(error.message)")
        }
    }

    /// The token format, byte for byte, as docs/server.md tells a storefront to compute it
    /// (checked against `openssl dgst -sha256 -hmac` in the docs' example).
    @Test func tokenFormat() {
        let token = IdentityVerifier.token(
            user: UserID(unchecked: "alice"), expiry: 1_764_770_000, secret: Array("0123456789abcdef0123456789abcdef".utf8))
        // The same as: printf '%s' alice.1764770000 | openssl dgst -sha256 -hmac "$SECRET" -binary | basenc --base64url | tr -d =
        #expect(token == "alice.1764770000.TmRPtsAu_CS4BTECbE2neyr2gsqMHPwKiLenoGX355Y")
        let verifier = IdentityVerifier(
            settings: IdentitySettings(mode: .signed, secret: Array("0123456789abcdef0123456789abcdef".utf8)), proxies: TrustedProxies())
        #expect((try? verifier.verify(token: token, now: Instant.seconds(1_764_769_999)).get()) == UserID(unchecked: "alice"))
        #expect((try? verifier.verify(token: token, now: Instant.seconds(1_764_770_000)).get()) == nil)
        #expect(Base64URL.decode(token.split(separator: ".").last!)?.count == 32)
        #expect(Base64URL.decode("AB") == nil)  // leftover bits set: not what encode writes
        #expect(Base64URL.decode("AA") == [0])
    }
}
