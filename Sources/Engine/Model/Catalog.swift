/// The items of every sale: names and pictures generated deterministically from
/// `(sale id, item id, catalog seed)`, so every instance and every replay agree without storage.
public struct Catalog: Sendable, Equatable {
    public let seed: UInt64

    public init(seed: UInt64) { self.seed = seed }

    static let adjectives = [
        "Amber", "Brave", "Crimson", "Dusky", "Electric", "Frosted", "Golden", "Hidden", "Ivory", "Jade",
        "Keen", "Lunar", "Misty", "Noble", "Opal", "Polished", "Quiet", "Rustic", "Silver", "Tidal",
        "Umber", "Velvet", "Wild", "Xenial", "Young", "Zesty",
    ]
    static let materials = [
        "Cedar", "Copper", "Linen", "Marble", "Wool", "Glass", "Leather", "Bamboo", "Ceramic", "Steel",
        "Cotton", "Walnut", "Slate", "Silk", "Brass", "Oak",
    ]
    static let nouns = [
        "Lamp", "Kettle", "Backpack", "Notebook", "Teapot", "Watch", "Scarf", "Mug", "Chair", "Vase",
        "Clock", "Blanket", "Bowl", "Candle", "Wallet", "Umbrella", "Bicycle Bell", "Headphones", "Planter", "Journal",
    ]

    func hash(_ sale: SaleID, _ item: ItemID, _ salt: UInt64) -> UInt64 {
        var h = SplitMix64.mix(seed ^ 0x5A1E_5A1E)
        h = SplitMix64.mix(h ^ UInt64(bitPattern: sale.rawValue))
        h = SplitMix64.mix(h ^ UInt64(item.rawValue))
        return SplitMix64.mix(h ^ salt)
    }

    /// A human-readable product name, e.g. "Velvet Copper Teapot".
    public func name(sale: SaleID, item: ItemID) -> String {
        let h = hash(sale, item, 1)
        let a = Self.adjectives[Int(h % UInt64(Self.adjectives.count))]
        let m = Self.materials[Int((h >> 16) % UInt64(Self.materials.count))]
        let n = Self.nouns[Int((h >> 32) % UInt64(Self.nouns.count))]
        return "\(a) \(m) \(n)"
    }

    /// A small SVG picture of the item: a gradient background and a few shapes drawn from its hash.
    public func imageSVG(sale: SaleID, item: ItemID) -> String {
        var rng = SplitMix64(seed: hash(sale, item, 2))
        func color() -> String {
            let v = rng.next()
            return "hsl(\(v % 360),\(45 + (v >> 16) % 40)%,\(35 + (v >> 24) % 35)%)"
        }
        let background1 = color(), background2 = color()
        var shapes = ""
        let count = 3 + Int(rng.next() % 4)
        for _ in 0..<count {
            // Signed, so `x - r` may go negative (a shape partly off the picture) instead of trapping.
            let x = 20 + Int(rng.next() % 160), y = 20 + Int(rng.next() % 160), r = 12 + Int(rng.next() % 40)
            let fill = color()
            if rng.next() % 2 == 0 {
                shapes += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"\(r)\" fill=\"\(fill)\" fill-opacity=\"0.8\"/>"
            } else {
                shapes += "<rect x=\"\(x - r)\" y=\"\(y - r)\" width=\"\(2 * r)\" height=\"\(r + r / 2)\" rx=\"6\" fill=\"\(fill)\" fill-opacity=\"0.8\"/>"
            }
        }
        let label = XMLText.escape(name(sale: sale, item: item))
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" viewBox="0 0 200 200">\
            <defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="\(background1)"/>\
            <stop offset="1" stop-color="\(background2)"/></linearGradient></defs>\
            <rect width="200" height="200" fill="url(#g)"/>\(shapes)\
            <text x="100" y="190" font-family="sans-serif" font-size="11" text-anchor="middle" fill="#fff">\(label)</text>\
            <text x="8" y="16" font-family="sans-serif" font-size="10" fill="#fff">#\(item.rawValue)</text></svg>
            """
    }
}
