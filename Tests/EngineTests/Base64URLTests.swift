import Engine
import Testing

@Suite("URL-safe base64 without padding")
struct Base64URLTests {
    @Test func decodeUndoesEncodeForEveryLength() {
        var random = TestRandom()
        for length in 0...40 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(Base64URL.decode(text) == bytes, "length \(length): \(text)")
        }
    }

    /// Only what `encode` writes is accepted, so one value has one spelling (a MAC compared as
    /// bytes cannot be varied in its text).
    @Test func refusesEverythingElse() {
        #expect(Base64URL.decode("A") == nil)  // 6 bits: not a whole byte
        #expect(Base64URL.decode("AB") == nil)  // leftover bits set
        #expect(Base64URL.decode("AA=") == nil)  // padding
        #expect(Base64URL.decode("+/8") == nil)  // the other alphabet
        #expect(Base64URL.decode("_-8") == [0xff, 0xef])
        #expect(Base64URL.decode("") == [])
    }
}
