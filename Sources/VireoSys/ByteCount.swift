/// Parses sizes such as "4096", "64K", "128KiB", "64M", "1G" (binary units).
/// Returns nil on malformed input or overflow.
public func parseByteCount(_ text: String) -> Int? {
    var digits = Substring(text)
    var unitShift = 0
    let lower = text.lowercased()
    for (suffix, shift) in [("kib", 10), ("mib", 20), ("gib", 30), ("tib", 40),
                            ("k", 10), ("m", 20), ("g", 30), ("t", 40), ("b", 0)] where lower.hasSuffix(suffix) {
        digits = digits.dropLast(suffix.count)
        unitShift = shift
        break
    }
    guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let n = Int(digits) else { return nil }
    let (v, o) = n.multipliedReportingOverflow(by: 1 << unitShift)
    return o ? nil : v
}
