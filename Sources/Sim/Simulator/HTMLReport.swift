import Engine

/// One self-contained HTML page for a run (`sale-sim --report FILE.html`): items sold and held over
/// simulated time per sale, answers by outcome, the faults as spans and moments on the same time
/// axis (per instance and per store), the coverage marks reached, and, for a failing run, the
/// violation marked on the timeline with the story of its item. A sweep gets a per-seed table.
/// Inline SVG and CSS only: no script, nothing fetched.
public enum HTMLReport {
    static let width = 960.0
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// The page for one run (its timeline must have been recorded).
    public static func page(for report: SimReport) -> String {
        var body = "<h1>sale-sim seed \(report.config.seed): \(report.passed ? "passed" : "FAILED")</h1>\n"
        body += "<p>\(escape(report.summary.split(separator: "\n").first.map(String.init) ?? ""))</p>\n"
        body += "<p><code>\(escape(report.replayCommand))</code></p>\n"
        if let violation = report.violations.first {
            body += "<p class=bad>Violation (red line below): \(escape(violation))</p>\n"
        }
        if let timeline = report.timeline {
            let end = max(report.simulatedSeconds, 1)
            let mark = report.passed ? nil : report.simulatedSeconds
            body += "<h2>Items sold (solid) and held (dashed), per sale</h2>\n" + itemsChart(timeline, end: end, violation: mark)
            body += "<h2>Answers per second, by outcome</h2>\n" + outcomesChart(timeline, end: end, violation: mark)
            body += "<h2>Faults</h2>\n" + faultsChart(timeline, end: end, violation: mark)
        }
        body += "<h2>Coverage marks reached</h2>\n" + table(report.coverage)
        body += "<h2>Faults injected</h2>\n" + table(report.faults)
        if !report.story.isEmpty {
            body += "<h2>Story of the item</h2>\n<pre>\(escape(report.story.joined(separator: "\n")))</pre>\n"
        }
        return document(title: "sale-sim seed \(report.config.seed)", body: body)
    }

    /// The page for a sweep: one row per seed.
    public static func page(forSweep reports: [SimReport]) -> String {
        let failed = reports.filter { !$0.passed }.count
        var body = "<h1>sale-sim sweep: \(reports.count) seeds, \(failed) failed</h1>\n<table><tr><th>seed</th><th>verdict</th>"
            + "<th>users</th><th>instances</th><th>sales × items</th><th>faults</th><th>requests</th><th>sold</th><th>wall s</th><th>violation</th></tr>\n"
        for r in reports {
            let c = r.config
            body += "<tr\(r.passed ? "" : " class=bad")><td>\(c.seed)</td><td>\(r.passed ? "passed" : "FAILED")</td><td>\(c.users)</td>"
                + "<td>\(c.instances)</td><td>\(c.sales) × \(c.rules.itemsPerSale)</td><td>\(escape(c.faults.name))</td><td>\(r.requests)</td>"
                + "<td>\(r.itemsSold.reduce(0) { $0 + $1.sold })</td><td>\(format(r.wallSeconds))</td>"
                + "<td>\(escape(r.violations.first ?? ""))</td></tr>\n"
        }
        return document(title: "sale-sim sweep", body: body + "</table>\n")
    }

    // MARK: Charts

    static func itemsChart(_ timeline: SimTimeline, end: Double, violation: Double?) -> String {
        let height = 220.0
        let top = Double(timeline.samples.flatMap { $0.sold + $0.held }.max() ?? 1)
        var lines: [(String, String, Bool, [(Double, Double)])] = []
        let sales = timeline.samples.first?.sold.count ?? 0
        for sale in 0..<sales {
            let color = palette[sale % palette.count]
            lines.append(("sale \(sale + 1) sold", color, false, timeline.samples.map { ($0.at, Double($0.sold[sale])) }))
            lines.append(("sale \(sale + 1) held", color, true, timeline.samples.map { ($0.at, Double($0.held[sale])) }))
        }
        return lineChart(lines, end: end, top: max(top, 1), height: height, violation: violation)
    }

    static func outcomesChart(_ timeline: SimTimeline, end: Double, violation: Double?) -> String {
        let names = Set(timeline.samples.flatMap { $0.outcomes.keys }).sorted()
        var lines: [(String, String, Bool, [(Double, Double)])] = []
        var top = 1.0
        for (index, name) in names.enumerated() {
            var points: [(Double, Double)] = []
            var previous = 0
            for sample in timeline.samples {
                let count = sample.outcomes[name] ?? 0
                let rate = Double(count - previous) / timeline.interval
                previous = count
                points.append((sample.at, rate))
                top = max(top, rate)
            }
            lines.append((name, palette[index % palette.count], false, points))
        }
        return lineChart(lines, end: end, top: top, height: 220, violation: violation)
    }

    static func faultsChart(_ timeline: SimTimeline, end: Double, violation: Double?) -> String {
        let lanes = Array(Set(timeline.faults.map(\.lane))).sorted()
        guard !lanes.isEmpty else { return "<p>none</p>\n" }
        let row = 22.0
        let left = 110.0
        let plot = width - left - 10
        var svg = "<svg width=\(Int(width)) height=\(Int(Double(lanes.count) * row + 24)) class=chart>\n"
        let names = Array(Set(timeline.faults.map(\.name))).sorted()
        for (index, lane) in lanes.enumerated() {
            let y = Double(index) * row
            svg += "<text x=0 y=\(format(y + 15))>\(escape(lane))</text><line x1=\(left) x2=\(width - 10) y1=\(format(y + row / 2)) y2=\(format(y + row / 2)) stroke=#ddd />\n"
            for fault in timeline.faults where fault.lane == lane {
                let color = palette[(names.firstIndex(of: fault.name) ?? 0) % palette.count]
                let x = left + plot * fault.from / end
                if let until = fault.until {
                    let w = max(2, plot * (min(until, end) - fault.from) / end)
                    svg += "<rect x=\(format(x)) y=\(format(y + 4)) width=\(format(w)) height=\(format(row - 8)) fill=\(color) opacity=0.7><title>\(escape(fault.name)) \(format(fault.from))–\(format(until)) s</title></rect>\n"
                } else {
                    svg += "<rect x=\(format(x)) y=\(format(y + 3)) width=2 height=\(format(row - 6)) fill=\(color)><title>\(escape(fault.name)) at \(format(fault.from)) s</title></rect>\n"
                }
            }
        }
        if let violation { svg += violationLine(x: left + plot * violation / end, height: Double(lanes.count) * row) }
        svg += axis(left: left, plot: plot, end: end, y: Double(lanes.count) * row + 16)
        svg += "</svg>\n<p class=legend>" + names.enumerated().map { "<span style=\"color:\(palette[$0.offset % palette.count])\">■</span> \(escape($0.element))" }.joined(separator: " ") + "</p>\n"
        return svg
    }

    static func lineChart(_ lines: [(name: String, color: String, dashed: Bool, points: [(Double, Double)])], end: Double, top: Double,
                          height: Double, violation: Double?) -> String {
        let left = 50.0
        let plot = width - left - 10
        var svg = "<svg width=\(Int(width)) height=\(Int(height + 24)) class=chart>\n"
        svg += "<text x=0 y=12>\(format(top))</text><text x=0 y=\(format(height))>0</text>\n"
        svg += "<line x1=\(left) x2=\(left) y1=0 y2=\(format(height)) stroke=#999 /><line x1=\(left) x2=\(width - 10) y1=\(format(height)) y2=\(format(height)) stroke=#999 />\n"
        for line in lines where !line.points.isEmpty {
            let points = line.points.map { "\(format(left + plot * $0.0 / end)),\(format(height - height * $0.1 / top))" }.joined(separator: " ")
            svg += "<polyline fill=none stroke=\(line.color) stroke-width=1.5\(line.dashed ? " stroke-dasharray=\"4 3\"" : "") points=\"\(points)\"><title>\(escape(line.name))</title></polyline>\n"
        }
        if let violation { svg += violationLine(x: left + plot * violation / end, height: height) }
        svg += axis(left: left, plot: plot, end: end, y: height + 16)
        svg += "</svg>\n<p class=legend>" + lines.filter { !$0.dashed }.map { "<span style=\"color:\($0.color)\">■</span> \(escape($0.name))" }.joined(separator: " ") + "</p>\n"
        return svg
    }

    static func violationLine(x: Double, height: Double) -> String {
        "<line x1=\(format(x)) x2=\(format(x)) y1=0 y2=\(format(height)) stroke=red stroke-width=2><title>violation</title></line>\n"
    }

    static func axis(left: Double, plot: Double, end: Double, y: Double) -> String {
        (0...5).map { step in
            let t = end * Double(step) / 5
            return "<text x=\(format(left + plot * Double(step) / 5 - 10)) y=\(format(y))>\(format(t)) s</text>"
        }.joined() + "\n"
    }

    static func table(_ counts: [String: Int]) -> String {
        guard !counts.isEmpty else { return "<p>none</p>\n" }
        return "<table>" + counts.sorted { $0.key < $1.key }.map { "<tr><td>\(escape($0.key))</td><td>\($0.value)</td></tr>" }.joined() + "</table>\n"
    }

    static func document(title: String, body: String) -> String {
        """
        <!doctype html>
        <html lang=en><head><meta charset=utf-8><title>\(escape(title))</title>
        <style>body{font:14px system-ui,sans-serif;margin:24px;max-width:1000px}h2{font-size:16px;margin-top:28px}
        .bad{color:#b00020}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}
        svg.chart text{font-size:11px;fill:#444}.legend{font-size:12px}pre{font-size:11px;overflow-x:auto;background:#f6f6f6;padding:8px}</style>
        </head><body>
        \(body)</body></html>

        """
    }

    static func escape(_ text: String) -> String { XMLText.escape(text) }

    static func format(_ x: Double) -> String {
        let scaled = (x * 10).rounded() / 10
        return scaled == scaled.rounded() ? String(Int(scaled)) : String(scaled)
    }
}
