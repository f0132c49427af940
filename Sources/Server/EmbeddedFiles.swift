import HTTPTypes
import Hummingbird
import NIOCore

/// Files the server serves as they are, compiled into the binary (SwiftPM's `embedInCode`
/// resources, `Resources/`), so that `GET /openapi.yaml` and the operator page do not depend on
/// the working directory or on files installed next to the binary.
struct EmbeddedFile: Sendable {
    let bytes: [UInt8]
    let contentType: String
    /// Whether a browser may keep it: these change only with the binary.
    let cacheControl: String

    /// The file as a `200` answer.
    func response(_ context: SaleRequestContext) -> Response {
        context.outcome.set("ok")
        var headers = HTTPFields()
        headers[.contentType] = contentType
        headers[.cacheControl] = cacheControl
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

enum EmbeddedFiles {
    /// The machine-readable contract, the repository's `openapi.yaml` as it was when the binary was built.
    static let openAPI = EmbeddedFile(
        bytes: PackageResources.openapi_yaml, contentType: "application/yaml; charset=utf-8", cacheControl: "no-cache")
    /// The live operator page (`GET /`): HTML, CSS and script in one file, no build step.
    static let livePage = EmbeddedFile(
        bytes: PackageResources.live_html, contentType: "text/html; charset=utf-8", cacheControl: "no-cache")
}
