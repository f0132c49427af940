import Engine
@testable import RedisAdapter
import Testing

/// The Redis record codec: exact round trips, and clear errors (never a crash) on bad input.
struct CodecTests {
    @Test("Every kind of hot value round-trips exactly")
    func roundTrips() throws {
        var rng = SplitMix64(seed: 42)
        let code = Code.generate(sale: SaleID(493_210), item: ItemID(9_999), using: &rng)
        let other = Code.generate(sale: SaleID(493_210), item: ItemID(3), using: &rng)
        let user = UserID(unchecked: "A.b_c-9")
        let values: [HotValue?] = [
            nil,
            .item(.held(Hold(code: code, user: user, expiresAt: Instant(microseconds: 1_775_000_123_456_789)))),
            .item(.sold(Purchase(code: code, user: user, purchasedAt: Instant(microseconds: -5)))),
            .user(UserRecord()),
            .user(UserRecord(slots: [HoldSlot(code: code, expiresAt: Instant(microseconds: 1)),
                                     HoldSlot(code: other, expiresAt: Instant(microseconds: 2))], purchased: [])),
            .user(UserRecord(slots: [], purchased: [ItemID(3), ItemID(1), ItemID(3)])),
            .user(UserRecord(slots: [HoldSlot(code: other, expiresAt: Instant(microseconds: 7))], purchased: [ItemID(12)])),
        ]
        for (index, value) in values.enumerated() {
            let version = UInt64(index + 1)
            let text = HotValueCodec.encode(version: version, value: value)
            #expect(try HotValueCodec.decodeRecord(text) == Versioned(value: value, version: version), "\(text)")
        }
        #expect(try HotValueCodec.decodeRecord("") == .absent)
    }

    @Test("Corrupt records are errors", arguments: [
        "x", "0|", "|H", "3|Z,1", "3|H,1.2.AAAAAAAAAAAAAAAAAAAAAA,bob", "3|H,bad,bob,1", "3|H,1.2.AAAAAAAAAAAAAAAAAAAAAA,b b,1",
        "3|S,1.2.AAAAAAAAAAAAAAAAAAAAAA,bob,1x", "3|U,1.2.AAAAAAAAAAAAAAAAAAAAAA,", "3|U,,x", "3|U", "18446744073709551616|",
    ])
    func corrupt(text: String) {
        #expect(throws: HotCodecError.self) { try HotValueCodec.decodeRecord(text) }
    }
}

@Test func runIDIsReadFromInfoServer() {
    let info = "# Server\r\nredis_version:7.0.15\r\nprocess_id:3991\r\nrun_id:b324e4bd0a622a25fd1743429ab31a823ae6f2a5\r\ntcp_port:63799\r\n"
    #expect(RedisDriver.runID(fromInfo: info) == "b324e4bd0a622a25fd1743429ab31a823ae6f2a5")
    #expect(RedisDriver.runID(fromInfo: "# Server\r\nredis_version:7.0.15\r\n") == nil)
}
