import Foundation
import Testing
@testable import VireoBench

/// The SVG writer on its own: ticks, escaping, empty and hostile input.
@Suite struct ReportSVGTests {
    typealias Mapping = SVGPlot.AxisMapping

    @Test func logTicks() {
        let (decades, minor) = Mapping.logTicks(low: 1, high: 1000)
        #expect(decades.map(\.value) == [1, 10, 100, 1000] && decades.map(\.label) == ["1", "10", "100", "1k"])
        #expect(minor.count == 24)
        let (narrow, _) = Mapping.logTicks(low: 1, high: 50)
        #expect(narrow.map(\.label) == ["1", "2", "5", "10", "20", "50"])
        let (tiny, _) = Mapping.logTicks(low: 3, high: 4)
        #expect(tiny.map(\.value) == [3, 4])
        #expect(Mapping.logTicks(low: 0, high: 10).0.isEmpty)
    }

    @Test func linearTicksAndLabels() {
        #expect(Mapping.niceStep(0.7) == 1 && Mapping.niceStep(13) == 20 && Mapping.niceStep(4.9) == 5)
        #expect(Mapping.niceStep(0) == 1 && Mapping.niceStep(.nan) == 1)
        #expect(Mapping.label(20000) == "20k" && Mapping.label(1500) == "1.5k" && Mapping.label(0.5) == "0.5")
        #expect(Mapping.label(2e6) == "2M" && Mapping.label(0) == "0")
        let axis = Mapping(axis: SVGPlot.Axis(label: "IOPS", scale: .auto(ratio: 20)), values: [1200, 4800])
        #expect(!axis.isLog && axis.low == 0 && axis.high == 5000 && axis.ticks.map(\.label).last == "5k")
        let wide = Mapping(axis: SVGPlot.Axis(label: "IOPS", scale: .auto(ratio: 20)), values: [10, 50000])
        #expect(wide.isLog && wide.fraction(10) > 0 && wide.fraction(50000) < 1)
    }

    @Test func escapingKeepsDocumentsWellFormed() throws {
        let hostile = "a<b>&\"c\"'\u{1}</text><script>"
        let plot = SVGPlot(title: hostile, subtitle: hostile,
                           xAxis: SVGPlot.Axis(label: hostile, scale: .log), yAxis: SVGPlot.Axis(label: "y", scale: .linear),
                           series: [SVGPlot.Series(name: hostile, color: "#000000", marker: .cross,
                                                   points: [SVGPlot.Point(x: 1, y: 1, label: hostile),
                                                            SVGPlot.Point(x: 10, y: 2)])])
        let svg = plot.render()
        #expect(!svg.contains("<script>"))
        let inspector = try #require(SVGInspector.parse(svg))
        #expect(inspector.series == ["a<b>&\"c\"'</text><script>"])
        #expect(SVGPlot.escape("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;")
    }

    @Test func emptyAndDegenerateData() throws {
        let empty = SVGPlot(title: "nothing", xAxis: SVGPlot.Axis(label: "x", scale: .log),
                            yAxis: SVGPlot.Axis(label: "y", scale: .log),
                            series: [SVGPlot.Series(name: "none", color: "#000000", marker: .circle, points: [])])
        let inspector = try #require(SVGInspector.parse(empty.render()))
        #expect(inspector.series.isEmpty && inspector.texts.contains("no data measured"))

        // Zero, negative and NaN values cannot sit on a log axis: dropped.
        let points = [0.0, -1, .nan, 5, 50].map { SVGPlot.Point(x: 1 + abs($0.isNaN ? 2 : $0), y: $0) }
        let degenerate = SVGPlot(title: "d", xAxis: SVGPlot.Axis(label: "x", scale: .linear),
                                 yAxis: SVGPlot.Axis(label: "y", scale: .log),
                                 series: [SVGPlot.Series(name: "s", color: "#0072B2", marker: .diamond, points: points)])
        let svg = degenerate.render()
        let parsed = try #require(SVGInspector.parse(svg))
        #expect(parsed.series == ["s"])
        #expect(!svg.contains("nan") && !svg.contains("inf"))
        // Two drawable points: one line, two markers with tooltips (+ the legend's marker).
        #expect(parsed.elementCounts["title"] == 1 + 2)

        // One value only, on every scale.
        for scale in [SVGPlot.Scale.linear, .log, .auto(ratio: 10)] {
            let single = SVGPlot(title: "one", xAxis: SVGPlot.Axis(label: "x", scale: scale),
                                 yAxis: SVGPlot.Axis(label: "y", scale: scale),
                                 series: [SVGPlot.Series(name: "s", color: "#000000", marker: .square,
                                                         points: [SVGPlot.Point(x: 3, y: 3, low: 2, high: 4)])])
            let svg = single.render()
            #expect(SVGInspector.parse(svg) != nil && !svg.contains("nan"), "\(scale)")
        }
    }
}
