import Crypto
import Engine
import HTTPTypes
import Hummingbird

/// How the server knows who the user of a request is (docs/spec.md, "Identity and abuse"; `IDENTITY_MODE`).
enum IdentityMode: String, Sendable, CaseIterable {
    /// `user_id` is believed as given (the contest's API). Anyone can act as anyone.
    case trust
    /// The storefront signs the user id: `X-User-Token: <user>.<expiry>.<mac>`.
    case signed
    /// A gateway in front of the server authenticates users and names them in a header; the
    /// header is believed only from `TRUSTED_PROXIES`.
    case gateway
}

/// The identity settings: the mode, the shared secret (`signed`), the header (`gateway`).
struct IdentitySettings: Sendable, Equatable {
    var mode: IdentityMode = .trust
    /// `IDENTITY_SECRET` (environment only, never a flag: command lines are visible to every
    /// local user in `ps`).
    var secret: [UInt8] = []
    /// The header a gateway names the user in.
    var gatewayHeader = "X-Authenticated-User"

    /// The shortest secret accepted: 32 bytes, the output size of SHA-256 (RFC 2104 §3).
    static let minimumSecretBytes = 32
    static let tokenHeader = "X-User-Token"
}

/// Checks the proof of a request's user in `signed` and `gateway` modes.
///
/// A signed token is `<user>.<expiry>.<mac>`: `user` a user id (1–64 of `[A-Za-z0-9_.-]`),
/// `expiry` Unix seconds (decimal), `mac` the unpadded URL-safe base64 of
/// HMAC-SHA256(`IDENTITY_SECRET`, `"<user>.<expiry>"`). The token is split at its last two dots
/// (a user id may contain dots). It is valid while the server's clock is before `expiry`.
struct IdentityVerifier: Sendable {
    let settings: IdentitySettings
    let proxies: TrustedProxies
    let key: SymmetricKey
    let tokenHeader: HTTPField.Name
    let gatewayHeader: HTTPField.Name

    init(settings: IdentitySettings, proxies: TrustedProxies) {
        self.settings = settings
        self.proxies = proxies
        key = SymmetricKey(data: settings.secret)
        tokenHeader = HTTPField.Name(IdentitySettings.tokenHeader)!  // a valid literal name
        // Checked when the configuration was read; the fallback is never used.
        gatewayHeader = HTTPField.Name(settings.gatewayHeader) ?? HTTPField.Name("X-Authenticated-User")!
    }

    var isOn: Bool { settings.mode != .trust }

    /// The verified user of `request`: nil in `trust` mode (nothing to verify); otherwise the user
    /// its proof names, or the `401` to answer.
    func verifiedUser(_ request: Request, peer: IPAddress?, now: Instant) -> Result<UserID?, APIError> {
        switch settings.mode {
        case .trust:
            return .success(nil)
        case .signed:
            let values = request.headers[values: tokenHeader]
            guard let token = values.first else { return .failure(.identityRequired) }
            guard values.count == 1 else { return .failure(.identityInvalid) }
            return verify(token: token, now: now).map { $0 }
        case .gateway:
            let values = request.headers[values: gatewayHeader]
            guard let peer, proxies.contains(peer) else {
                return .failure(values.isEmpty ? .identityRequired : .untrustedGateway)
            }
            guard let name = values.first else { return .failure(.identityRequired) }
            guard values.count == 1, let user = UserID.parse(name) else { return .failure(.identityInvalid) }
            return .success(user)
        }
    }

    /// Verifies a signed token; the signature is checked (in constant time, by swift-crypto)
    /// before the expiry, so nothing about an unsigned token is revealed.
    func verify(token: String, now: Instant) -> Result<UserID, APIError> {
        guard token.utf8.count <= 160 else { return .failure(.identityInvalid) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 3 else { return .failure(.identityInvalid) }
        let macText = parts[parts.count - 1]
        let expiryText = parts[parts.count - 2]
        let signed = token.utf8.dropLast(macText.utf8.count + 1)
        let userText = parts[0..<(parts.count - 2)].joined(separator: ".")
        guard let user = UserID.parse(userText), let expiry = Self.parseExpiry(expiryText), let mac = Base64URL.decode(macText),
            mac.count == SHA256.byteCount
        else { return .failure(.identityInvalid) }
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Array(signed), using: key) else {
            return .failure(.identityInvalid)
        }
        guard now < Instant.seconds(expiry) else { return .failure(.identityExpired) }
        return .success(user)
    }

    /// Unix seconds: 1 to 12 decimal digits, no sign, no leading zero.
    static func parseExpiry<S: StringProtocol>(_ text: S) -> Int64? {
        let digits = Array(text.utf8)
        guard (1...12).contains(digits.count), digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            digits.count == 1 || digits[0] != UInt8(ascii: "0")
        else { return nil }
        return Int64(String(decoding: digits, as: UTF8.self))
    }

    /// A token for `user` valid until `expiry` (Unix seconds): what the storefront computes (the
    /// server itself only verifies; the tests sign with this).
    static func token(user: UserID, expiry: Int64, secret: [UInt8]) -> String {
        let message = "\(user.rawValue).\(expiry)"
        let mac = HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: SymmetricKey(data: secret))
        return message + "." + Base64URL.encode(Array(mac))
    }

    /// The `WWW-Authenticate` challenge a `401` carries (RFC 9110 §11.6.1).
    var challenge: String {
        switch settings.mode {
        case .trust: ""
        case .signed: #"UserToken realm="flash-sale", header="\#(IdentitySettings.tokenHeader)""#
        case .gateway: #"Gateway realm="flash-sale", header="\#(settings.gatewayHeader)""#
        }
    }

    /// The `401` answer of a request without valid proof.
    func refusal(_ error: APIError) -> Response {
        var headers = HTTPFields()
        headers[.wwwAuthenticate] = challenge
        return .error(error, headers: headers)
    }
}

extension APIError {
    static let identityRequired = APIError(
        status: 401, code: "identity_required",
        message: "this server needs proof of the user: a signed X-User-Token, or a user named by the trusted gateway")
    static let identityInvalid = APIError(
        status: 401, code: "identity_invalid", message: "the proof of the user is malformed or its signature is wrong")
    static let identityExpired = APIError(
        status: 401, code: "identity_expired", message: "the user token has expired; get a fresh one from the storefront")
    static let identityMismatch = APIError(
        status: 401, code: "identity_mismatch", message: "the proof names another user than the one this request acts for")
    static let untrustedGateway = APIError(
        status: 401, code: "untrusted_gateway", message: "the user header is only accepted from the trusted gateway's addresses")
}
