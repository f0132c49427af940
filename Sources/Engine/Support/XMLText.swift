/// Text made safe inside XML and HTML (element content and quoted attributes): the one escaper of
/// the item pictures (`Catalog`) and the simulator's HTML report.
public enum XMLText {
    public static func escape(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }
}
