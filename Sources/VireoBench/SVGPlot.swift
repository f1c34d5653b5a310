import Foundation

/// A line plot written as a standalone SVG document, no dependencies:
/// linear or logarithmic axes with ticks, grid and labels, one line with
/// markers per series (optional min–max whiskers), and a legend. Colours
/// and marker shapes are chosen by the caller so a system looks the same
/// in every plot; dashed series (references such as perftest) get hollow
/// markers, so series stay apart without colour too.
public struct SVGPlot: Sendable {
    /// How an axis maps values to pixels.
    public enum Scale: Sendable, Equatable {
        case linear
        case log
        /// Log when the positive values span more than `ratio` (max/min),
        /// else linear from zero.
        case auto(ratio: Double)
    }

    /// An explicit tick: where, and what it says.
    public struct Tick: Sendable, Equatable {
        public var value: Double
        public var label: String
        public init(_ value: Double, _ label: String) {
            self.value = value
            self.label = label
        }
    }

    public struct Axis: Sendable {
        public var label: String
        public var scale: Scale
        /// Explicit ticks; nil for automatic ones (decades on log axes,
        /// 1-2-5 steps on linear ones).
        public var ticks: [Tick]?
        /// Append " (log scale)" to the label when the axis is logarithmic.
        public var annotatesScale: Bool
        public init(label: String, scale: Scale, ticks: [Tick]? = nil, annotatesScale: Bool = true) {
            self.label = label
            self.scale = scale
            self.ticks = ticks
            self.annotatesScale = annotatesScale
        }
    }

    /// Marker shapes, so series differ in more than colour.
    public enum Marker: String, Sendable, CaseIterable {
        case circle, square, triangle, diamond, invertedTriangle, cross
    }

    public struct Point: Sendable, Equatable {
        public var x: Double
        public var y: Double
        /// Whisker ends (e.g. min and max over rounds).
        public var low: Double?
        public var high: Double?
        /// Tooltip text; defaults to "name: x, y".
        public var label: String?
        public init(x: Double, y: Double, low: Double? = nil, high: Double? = nil, label: String? = nil) {
            self.x = x
            self.y = y
            self.low = low
            self.high = high
            self.label = label
        }
    }

    public struct Series: Sendable {
        public var name: String
        /// An SVG colour, e.g. "#0072B2".
        public var color: String
        public var marker: Marker
        /// Dashed line and hollow markers (references).
        public var dashed: Bool
        public var points: [Point]
        public init(name: String, color: String, marker: Marker, dashed: Bool = false, points: [Point]) {
            self.name = name
            self.color = color
            self.marker = marker
            self.dashed = dashed
            self.points = points
        }
    }

    /// Okabe–Ito colours: distinguishable with the common colour-vision
    /// deficiencies, readable on white.
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
                                 "#7F7F7F"]

    public var title: String
    public var subtitle: String?
    public var xAxis: Axis
    public var yAxis: Axis
    public var series: [Series]
    public var width: Double = 900
    public var height: Double = 540

    public init(title: String, subtitle: String? = nil, xAxis: Axis, yAxis: Axis, series: [Series]) {
        self.title = title
        self.subtitle = subtitle
        self.xAxis = xAxis
        self.yAxis = yAxis
        self.series = series
    }

    // MARK: Rendering

    /// The SVG document.
    public func render() -> String {
        let drawn = series.filter { !$0.points.isEmpty }
        let xValues = drawn.flatMap { $0.points.map(\.x) }
        let yValues = drawn.flatMap { $0.points.flatMap { [$0.y, $0.low, $0.high].compactMap { $0 } } }
        let x = AxisMapping(axis: xAxis, values: xValues)
        let y = AxisMapping(axis: yAxis, values: yValues)

        let longestName = drawn.map(\.name.count).max() ?? 0
        let legendWidth = drawn.isEmpty ? 0 : min(320, Double(longestName) * 7.2 + 56)
        let left = 92.0, top = subtitle == nil ? 56.0 : 72.0
        let right = width - legendWidth - 28, bottom = height - 64
        let plotWidth = right - left, plotHeight = bottom - top
        func px(_ v: Double) -> Double { left + x.fraction(v) * plotWidth }
        func py(_ v: Double) -> Double { bottom - y.fraction(v) * plotHeight }

        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" \
            viewBox="0 0 \(f(width)) \(f(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" \
            font-size="13">
            <title>\(Self.escape(title))</title>
            <rect x="0" y="0" width="\(f(width))" height="\(f(height))" fill="#ffffff"/>
            <text x="\(f(width / 2))" y="28" text-anchor="middle" font-size="18" font-weight="bold" \
            fill="#222222">\(Self.escape(title))</text>

            """
        if let subtitle {
            svg += "<text x=\"\(f(width / 2))\" y=\"50\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555555\">"
                + "\(Self.escape(subtitle))</text>\n"
        }

        // Grid (minor then major), then the frame over it.
        svg += "<g class=\"grid\" stroke-width=\"1\">\n"
        for t in x.minorTicks { svg += line(px(t), top, px(t), bottom, "#f0f0f0") }
        for t in y.minorTicks { svg += line(left, py(t), right, py(t), "#f0f0f0") }
        for t in x.ticks { svg += line(px(t.value), top, px(t.value), bottom, "#d9d9d9") }
        for t in y.ticks { svg += line(left, py(t.value), right, py(t.value), "#d9d9d9") }
        svg += "</g>\n"
        svg += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(plotWidth))\" height=\"\(f(plotHeight))\" "
            + "fill=\"none\" stroke=\"#333333\" stroke-width=\"1\"/>\n"

        // Axes: tick marks, tick labels, axis labels.
        svg += "<g class=\"x-axis\" fill=\"#222222\">\n"
        for t in x.ticks {
            svg += line(px(t.value), bottom, px(t.value), bottom + 6, "#333333")
            svg += "<text x=\"\(f(px(t.value)))\" y=\"\(f(bottom + 21))\" text-anchor=\"middle\">"
                + "\(Self.escape(t.label))</text>\n"
        }
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 18))\" text-anchor=\"middle\" "
            + "font-size=\"14\">\(Self.escape(xAxis.label + (xAxis.annotatesScale ? x.scaleNote : "")))</text>\n</g>\n"
        svg += "<g class=\"y-axis\" fill=\"#222222\">\n"
        for t in y.ticks {
            svg += line(left - 6, py(t.value), left, py(t.value), "#333333")
            svg += "<text x=\"\(f(left - 10))\" y=\"\(f(py(t.value) + 4.5))\" text-anchor=\"end\">"
                + "\(Self.escape(t.label))</text>\n"
        }
        let yLabelX = 22.0, yLabelY = top + plotHeight / 2
        svg += "<text x=\"\(f(yLabelX))\" y=\"\(f(yLabelY))\" text-anchor=\"middle\" font-size=\"14\" "
            + "transform=\"rotate(-90 \(f(yLabelX)) \(f(yLabelY)))\">\(Self.escape(yAxis.label + (yAxis.annotatesScale ? y.scaleNote : "")))</text>\n"
        svg += "</g>\n"

        if drawn.isEmpty {
            svg += "<text class=\"no-data\" x=\"\(f(left + plotWidth / 2))\" y=\"\(f(top + plotHeight / 2))\" "
                + "text-anchor=\"middle\" font-size=\"16\" fill=\"#888888\">no data measured</text>\n"
        }

        // Series: whiskers, line, markers (with tooltips).
        for s in drawn {
            let points = s.points.filter { x.accepts($0.x) && y.accepts($0.y) }.sorted { $0.x < $1.x }
            svg += "<g class=\"series\" data-series=\"\(Self.escape(s.name))\">\n"
            for p in points {
                let lo = p.low.flatMap { y.accepts($0) ? $0 : nil }
                let hi = p.high.flatMap { y.accepts($0) ? $0 : nil }
                if let lo, let hi, hi > lo {
                    let cx = px(p.x)
                    svg += line(cx, py(lo), cx, py(hi), s.color, width: 1.2)
                    svg += line(cx - 4, py(lo), cx + 4, py(lo), s.color, width: 1.2)
                    svg += line(cx - 4, py(hi), cx + 4, py(hi), s.color, width: 1.2)
                }
            }
            if points.count > 1 {
                let d = points.enumerated().map { i, p in "\(i == 0 ? "M" : "L")\(f(px(p.x))),\(f(py(p.y)))" }
                svg += "<path d=\"\(d.joined(separator: " "))\" fill=\"none\" stroke=\"\(s.color)\" "
                    + "stroke-width=\"2.2\" stroke-linejoin=\"round\"\(s.dashed ? " stroke-dasharray=\"7 4\"" : "")/>\n"
            }
            for p in points {
                let tip = p.label ?? "\(s.name): \(ReportFormat.number(p.x)), \(ReportFormat.number(p.y))"
                svg += marker(s.marker, px(p.x), py(p.y), color: s.color, hollow: s.dashed, tooltip: tip)
            }
            svg += "</g>\n"
        }

        // Legend, right of the plot.
        if !drawn.isEmpty {
            let lx = right + 20, ly = top + 4
            svg += "<g class=\"legend\">\n"
            svg += "<rect x=\"\(f(lx - 8))\" y=\"\(f(ly - 6))\" width=\"\(f(legendWidth))\" "
                + "height=\"\(f(Double(drawn.count) * 24 + 8))\" fill=\"#ffffff\" stroke=\"#cccccc\"/>\n"
            for (i, s) in drawn.enumerated() {
                let cy = ly + 10 + Double(i) * 24
                svg += "<line x1=\"\(f(lx))\" y1=\"\(f(cy))\" x2=\"\(f(lx + 30))\" y2=\"\(f(cy))\" stroke=\"\(s.color)\" "
                    + "stroke-width=\"2.2\"\(s.dashed ? " stroke-dasharray=\"7 4\"" : "")/>\n"
                svg += marker(s.marker, lx + 15, cy, color: s.color, hollow: s.dashed, tooltip: nil)
                svg += "<text x=\"\(f(lx + 40))\" y=\"\(f(cy + 4.5))\" fill=\"#222222\">\(Self.escape(s.name))</text>\n"
            }
            svg += "</g>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    private func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, _ color: String,
                      width: Double = 1) -> String {
        "<line x1=\"\(f(x1))\" y1=\"\(f(y1))\" x2=\"\(f(x2))\" y2=\"\(f(y2))\" stroke=\"\(color)\" "
            + "stroke-width=\"\(f(width))\"/>\n"
    }

    private func marker(_ shape: Marker, _ x: Double, _ y: Double, color: String, hollow: Bool,
                        tooltip: String?) -> String {
        let fill = hollow ? "#ffffff" : color
        let style = "fill=\"\(fill)\" stroke=\"\(hollow ? color : "#ffffff")\" stroke-width=\"\(hollow ? "1.8" : "1")\""
        let body: String
        switch shape {
        case .circle:
            body = "<circle cx=\"\(f(x))\" cy=\"\(f(y))\" r=\"4.8\" \(style)"
        case .square:
            body = "<rect x=\"\(f(x - 4.3))\" y=\"\(f(y - 4.3))\" width=\"8.6\" height=\"8.6\" \(style)"
        case .triangle:
            body = "<path d=\"M\(f(x)),\(f(y - 5.8)) L\(f(x + 5.5)),\(f(y + 4)) L\(f(x - 5.5)),\(f(y + 4)) Z\" \(style)"
        case .invertedTriangle:
            body = "<path d=\"M\(f(x)),\(f(y + 5.8)) L\(f(x + 5.5)),\(f(y - 4)) L\(f(x - 5.5)),\(f(y - 4)) Z\" \(style)"
        case .diamond:
            body = "<path d=\"M\(f(x)),\(f(y - 6)) L\(f(x + 6)),\(f(y)) L\(f(x)),\(f(y + 6)) L\(f(x - 6)),\(f(y)) Z\" \(style)"
        case .cross:
            body = "<path d=\"M\(f(x - 4.5)),\(f(y - 4.5)) L\(f(x + 4.5)),\(f(y + 4.5)) M\(f(x - 4.5)),\(f(y + 4.5)) "
                + "L\(f(x + 4.5)),\(f(y - 4.5))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2.4\""
        }
        guard let tooltip else { return body + "/>\n" }
        let tag = body.hasPrefix("<circle") ? "circle" : body.hasPrefix("<rect") ? "rect" : "path"
        return body + "><title>\(Self.escape(tooltip))</title></\(tag)>\n"
    }

    /// A coordinate with at most 2 decimals.
    private func f(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(format: "%.2f", r)
    }

    /// Escapes text for element content and attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // XML 1.0 forbids most control characters.
                if c.value < 0x20 && c != "\t" && c != "\n" && c != "\r" { continue }
                out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
