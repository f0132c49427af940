import Engine
import Testing

@Suite("Sale model")
struct ModelTests {
    @Test func calendarFloorsToTheSaleContainingAnInstant() {
        let calendar = SaleCalendar(saleLength: .seconds(3_600))
        #expect(calendar.sale(at: .seconds(0)) == SaleID(0))
        #expect(calendar.sale(at: .seconds(3_599)) == SaleID(0))
        #expect(calendar.sale(at: .seconds(3_600)) == SaleID(1))
        #expect(calendar.sale(at: Instant(microseconds: -1)) == SaleID(-1))
        #expect(calendar.start(of: SaleID(2)) == .seconds(7_200))
        #expect(calendar.end(of: SaleID(2)) == .seconds(10_800))
    }

    @Test func rfc3339HasMillisecondsAndUTC() {
        #expect(RFC3339.format(.seconds(0)) == "1970-01-01T00:00:00.000Z")
        #expect(RFC3339.format(Instant(microseconds: 1_764_082_517_123_456)) == "2025-11-25T14:55:17.123Z")
        #expect(RFC3339.format(.seconds(951_782_400)) == "2000-02-29T00:00:00.000Z")
    }

    @Test func catalogIsAFunctionOfSaleItemAndSeed() {
        let a = Catalog(seed: 1), b = Catalog(seed: 1), c = Catalog(seed: 2)
        #expect(a.name(sale: SaleID(5), item: ItemID(7)) == b.name(sale: SaleID(5), item: ItemID(7)))
        #expect(a.imageSVG(sale: SaleID(5), item: ItemID(7)) == b.imageSVG(sale: SaleID(5), item: ItemID(7)))
        let names = Set((1...50).map { a.name(sale: SaleID(5), item: ItemID($0)) })
        #expect(names.count > 30)
        #expect((1...20).contains { a.name(sale: SaleID(5), item: ItemID($0)) != c.name(sale: SaleID(5), item: ItemID($0)) })
        let svg = a.imageSVG(sale: SaleID(5), item: ItemID(7))
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>"))
    }

    /// Any sale id a URL can carry renders a picture (a trap here would crash the server on input).
    @Test func everyItemOfAnySaleHasAPicture() {
        var random = TestRandom()
        for _ in 0..<20_000 {
            let catalog = Catalog(seed: random.next())
            let sale = SaleID(Int64(bitPattern: random.next()))
            let svg = catalog.imageSVG(sale: sale, item: ItemID(Int(random.next() % 10_000_000) + 1))
            #expect(svg.hasSuffix("</svg>"))
        }
    }

    @Test func codesRoundTripAndRejectMalformedText() {
        var random = TestRandom()
        let code = Code.generate(sale: SaleID(491_234), item: ItemID(517), using: &random)
        #expect(code.nonce.count == 22)
        #expect(Code.parse(code.text) == code)
        for bad in ["", "1.2", "1.2.3.4", "a.2.AAAAAAAAAAAAAAAAAAAAAA", "1.0.AAAAAAAAAAAAAAAAAAAAAA", "1.2.AAAAAAAAAAAAAAAAAAAAA",
                    "1.2.AAAAAAAAAAAAAAAAAAAA+/", "01.2.AAAAAAAAAAAAAAAAAAAAAA", String(repeating: "9", count: 70)] {
            #expect(Code.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func codesFromTheSameSourceDiffer() {
        var random = TestRandom()
        let codes = (0..<1_000).map { _ in Code.generate(sale: SaleID(1), item: ItemID(1), using: &random) }
        #expect(Set(codes).count == 1_000)
    }

    @Test func userIDsAreValidated() {
        #expect(UserID.parse("alice_1.B-2") != nil)
        #expect(UserID.parse(String(repeating: "a", count: 64)) != nil)
        for bad in ["", String(repeating: "a", count: 65), "a b", "é", "a/b", "a%20"] { #expect(UserID.parse(bad) == nil, "\(bad)") }
    }

    @Test func rulesRejectNonsense() {
        var rules = SaleRules()
        #expect(throws: Never.self) { try rules.validate() }
        rules.userLimit = 0
        #expect(throws: ConfigurationError.self) { try rules.validate() }
        rules = SaleRules()
        rules.itemsPerSale = 0
        #expect(throws: ConfigurationError.self) { try rules.validate() }
    }
}

@Suite("Request parsing")
struct RequestParsingTests {
    let rules = SaleRules()

    func checkoutError(_ query: String) -> String? {
        do {
            _ = try CheckoutRequest.parse(query: query, rules: rules)
            return nil
        } catch {
            return error.code
        }
    }

    @Test func wellFormedCheckoutParses() throws {
        let request = try CheckoutRequest.parse(query: "user_id=u-1.x_Y&id=10000", rules: rules)
        #expect(request == CheckoutRequest(user: UserID(unchecked: "u-1.x_Y"), item: ItemID(10_000)))
        #expect(try CheckoutRequest.parse(query: "id=1&user_id=%61", rules: rules).user == UserID(unchecked: "a"))
    }

    @Test(arguments: [
        ("", "missing_user_id"), ("id=1", "missing_user_id"), ("user_id=a", "missing_item_id"),
        ("user_id=&id=1", "invalid_user_id"), ("user_id=a%20b&id=1", "invalid_user_id"),
        ("user_id=\(String(repeating: "a", count: 65))&id=1", "invalid_user_id"),
        ("user_id=a&id=0", "invalid_item_id"), ("user_id=a&id=10001", "invalid_item_id"), ("user_id=a&id=-1", "invalid_item_id"),
        ("user_id=a&id=1e3", "invalid_item_id"), ("user_id=a&id=99999999999999999999", "invalid_item_id"),
        ("user_id=a&id=1&id=2", "duplicate_parameter"), ("user_id=a&id=1&debug=1", "unknown_parameter"),
        ("user_id=a&id=%zz", "malformed_query"), ("user_id=%ff%fe&id=1", "malformed_query"), ("user_id=a&id=1%", "malformed_query"),
        (String(repeating: "x", count: 3_000), "query_too_long"),
    ])
    func malformedCheckoutsHavePreciseCodes(query: String, code: String) {
        #expect(checkoutError(query) == code)
    }

    @Test func purchaseCodeIsParsedStrictly() {
        #expect(throws: APIError.self) { try Code.parse(query: "") }
        #expect(throws: APIError.self) { try Code.parse(query: "code=abc") }
        #expect(throws: APIError.self) { try Code.parse(query: "code=1.2.AAAAAAAAAAAAAAAAAAAAAA&code=1.2.AAAAAAAAAAAAAAAAAAAAAA") }
        #expect((try? Code.parse(query: "code=1.2.AAAAAAAAAAAAAAAAAAAAAA")) == Code(sale: SaleID(1), item: ItemID(2), nonce: "AAAAAAAAAAAAAAAAAAAAAA"))
    }
}
