import Foundation

extension SVGPlot {
    /// One axis resolved against the data: its domain, ticks, and the
    /// value → [0, 1] mapping.
    struct AxisMapping {
        let isLog: Bool
        let low: Double
        let high: Double
        let ticks: [Tick]
        let minorTicks: [Double]

        init(axis: Axis, values: [Double]) {
            let finite = values.filter(\.isFinite)
            let positive = finite.filter { $0 > 0 }
            switch axis.scale {
            case .linear: isLog = false
            case .log: isLog = true
            case .auto(let ratio):
                if let lo = positive.min(), let hi = positive.max(), positive.count == finite.count {
                    isLog = hi / lo > ratio
                } else {
                    isLog = false
                }
            }
            if isLog {
                var data = positive + (axis.ticks?.map(\.value).filter { $0 > 0 } ?? [])
                if data.isEmpty { data = [1, 10] }
                var lo = data.min() ?? 1, hi = data.max() ?? 10
                if let explicit = axis.ticks, !explicit.isEmpty {
                    // Explicit ticks: pad by 6% of the span on each side so
                    // markers stay off the frame.
                    if lo == hi { lo /= 2; hi *= 2 }
                    let pad = (log10(hi) - log10(lo)) * 0.06
                    low = pow(10, log10(lo) - pad)
                    high = pow(10, log10(hi) + pad)
                    ticks = explicit.filter { $0.value > 0 }
                    minorTicks = []
                } else {
                    // Pad by ×1.25 so no marker sits on the frame; ticks
                    // fall wherever the decades (and 2, 5) land inside.
                    if lo == hi { lo /= 3; hi *= 3 }
                    // ... and snap to a decade within a factor of 2, so
                    // the ends are labelled where that costs little room.
                    let padLow = lo / 1.25, padHigh = hi * 1.25
                    let decadeLow = pow(10, floor(log10(padLow))), decadeHigh = pow(10, ceil(log10(padHigh)))
                    low = decadeLow >= padLow / 2 ? decadeLow : padLow
                    high = decadeHigh <= padHigh * 2 ? decadeHigh : padHigh
                    (ticks, minorTicks) = Self.logTicks(low: low, high: high)
                }
            } else {
                var data = finite + (axis.ticks?.map(\.value) ?? [])
                if data.isEmpty { data = [0, 1] }
                var lo = min(0, data.min() ?? 0), hi = max(0, data.max() ?? 1)
                if hi == lo { hi = lo + 1 }
                if let explicit = axis.ticks, !explicit.isEmpty {
                    low = lo
                    high = hi
                    ticks = explicit
                } else {
                    let step = Self.niceStep((hi - lo) / 5)
                    lo = floor(lo / step) * step
                    hi = ceil(hi / step) * step
                    low = lo
                    high = hi
                    var generated: [Tick] = []
                    var v = lo
                    while v <= hi + step / 2, generated.count < 50 {
                        generated.append(Tick(v, Self.label(abs(v) < step / 1e6 ? 0 : v)))
                        v += step
                    }
                    ticks = generated
                }
                minorTicks = []
            }
        }

        /// Where `value` falls, 0 at the low end and 1 at the high end.
        func fraction(_ value: Double) -> Double {
            if isLog {
                guard value > 0, high > low else { return 0 }
                return (log10(value) - log10(low)) / (log10(high) - log10(low))
            }
            guard high > low else { return 0 }
            return (value - low) / (high - low)
        }

        /// Whether `value` can be drawn (log axes drop zero and negatives).
        func accepts(_ value: Double) -> Bool { value.isFinite && (!isLog || value > 0) }

        /// Appended to the axis label.
        var scaleNote: String { isLog ? " (log scale)" : "" }

        /// Decades, plus 2 and 5 when the range spans at most two decades
        /// (or the decades alone would give fewer than two labels); minor
        /// grid at the other multiples when it spans at most five.
        static func logTicks(low: Double, high: Double) -> ([Tick], [Double]) {
            guard low > 0, high > low, low.isFinite, high.isFinite else { return ([], []) }
            let first = Int(floor(log10(low))), last = Int(ceil(log10(high)))
            let decades = log10(high) - log10(low)
            var major: [Double] = [], minor: [Double] = []
            for e in first...max(first, last) {
                let base = pow(10, Double(e))
                for m in 1...9 {
                    let v = base * Double(m)
                    guard v >= low * 0.9999, v <= high * 1.0001 else { continue }
                    if m == 1 {
                        major.append(v)
                    } else if decades <= 2 && (m == 2 || m == 5) {
                        major.append(v)
                    } else if decades <= 5 {
                        minor.append(v)
                    }
                }
            }
            if major.count < 2 {
                // Less than a decade: every multiple in range is a label.
                major = (major + minor).sorted()
                minor = []
            }
            if major.count < 2 {
                major = [low, high]
            }
            return (major.map { Tick($0, label($0)) }, minor)
        }

        /// 1, 2 or 5 × 10^k, at least `raw`.
        static func niceStep(_ raw: Double) -> Double {
            guard raw > 0, raw.isFinite else { return 1 }
            let magnitude = pow(10, floor(log10(raw)))
            for m in [1.0, 2, 5, 10] where m * magnitude >= raw * 0.999 { return m * magnitude }
            return 10 * magnitude
        }

        /// Tick text: 0.1, 2, 50, 1k, 20k, 1M (exact for 1-2-5 values).
        static func label(_ v: Double) -> String {
            let a = abs(v)
            func trim(_ x: Double) -> String {
                let s = String(format: "%.2f", x)
                var t = s
                while t.hasSuffix("0") { t.removeLast() }
                if t.hasSuffix(".") { t.removeLast() }
                return t
            }
            if a >= 1e9 { return trim(v / 1e9) + "G" }
            if a >= 1e6 { return trim(v / 1e6) + "M" }
            if a >= 1e3 { return trim(v / 1e3) + "k" }
            if a >= 1 { return trim(v) }
            if a == 0 { return "0" }
            return String(format: "%g", v)
        }
    }
}
