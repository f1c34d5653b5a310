import VireoSys

/// How a structured source's value (a TOML value, a control request's JSON value) reads as
/// each typed configuration value: one set of rules, so the file and the control API accept
/// and refuse the same things (`TOMLTableReader`, `JSONParamsReader`).
public enum ConfigValueRules {
    public static let byteCountWhat = "a byte count such as 4096, \"64M\" or \"1G\""
    public static let durationWhat = "a duration such as \"120s\", \"500ms\" or \"2m\", or a number of seconds"
    public static let stringsWhat = "an array of strings"

    /// Bytes: a non-negative integer, or a size such as "64M".
    public static func byteCount(int: Int?, string: String?) -> Int? {
        if let n = int { return n >= 0 ? n : nil }
        return string.flatMap { parseByteCount($0) }
    }

    /// Nanoseconds: a non-negative integer number of seconds, or a duration such as "500ms".
    public static func duration(int: Int?, string: String?) -> UInt64? {
        if let n = int {
            guard n >= 0 else { return nil }
            let (ns, overflow) = UInt64(n).multipliedReportingOverflow(by: 1_000_000_000)
            return overflow ? nil : ns
        }
        return string.flatMap { parseDuration($0) }
    }

    /// Strings: an array whose every element is a string.
    public static func strings(_ elements: [String?]?) -> [String]? {
        guard let elements, !elements.contains(nil) else { return nil }
        return elements.compactMap { $0 }
    }
}
