/// Parses durations such as "120s", "500ms", "2m", "1h", or a bare number of seconds,
/// into nanoseconds. Returns nil on malformed input or overflow.
public func parseDuration(_ text: String) -> UInt64? {
    var t = Substring(text)
    while t.first == " " { t = t.dropFirst() }
    while t.last == " " { t = t.dropLast() }
    let units: [(String, UInt64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
    var scale: UInt64 = 1_000_000_000
    for (suffix, unit) in units where t.hasSuffix(suffix) {
        t = t.dropLast(suffix.count)
        scale = unit
        break
    }
    guard let v = UInt64(t) else { return nil }
    let (r, o) = v.multipliedReportingOverflow(by: scale)
    return o ? nil : r
}
