/// Writes TOML text a `TOMLTableReader` reads back to the same values: key = value lines,
/// `[[array]]` tables, basic strings with every character TOML requires escaped. How
/// `config_get` prints a running daemon's configuration.
public struct TOMLWriter: Sendable {
    public private(set) var text = ""

    public init() {}

    /// A `key = "string"` line.
    public mutating func set(_ key: String, _ value: String) { line(key, Self.quoted(value)) }
    public mutating func set(_ key: String, _ value: Int) { line(key, String(value)) }
    public mutating func set(_ key: String, _ value: UInt64) { line(key, String(value)) }
    public mutating func set(_ key: String, _ value: Bool) { line(key, value ? "true" : "false") }
    /// A number that may have a fraction (TOML floats need a digit after the point).
    public mutating func set(_ key: String, _ value: Double) {
        line(key, value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)")
    }
    /// An integer written in octal (`0o600`: permission bits).
    public mutating func setOctal(_ key: String, _ value: Int) { line(key, "0o" + String(value, radix: 8)) }
    /// An array of strings.
    public mutating func set(_ key: String, _ values: [String]) {
        line(key, "[" + values.map(Self.quoted).joined(separator: ", ") + "]")
    }

    /// Each optional only when present.
    public mutating func set(_ key: String, _ value: String?) { if let value { set(key, value) } }
    public mutating func set(_ key: String, _ value: Bool?) { if let value { set(key, value) } }
    public mutating func set(_ key: String, _ value: Int?) { if let value { set(key, value) } }
    public mutating func set(_ key: String, _ value: Double?) { if let value { set(key, value) } }
    public mutating func set(_ key: String, _ values: [String]?) { if let values { set(key, values) } }

    /// Starts a new table of the array `path` (`export`, `network.port`).
    public mutating func table(_ path: String) {
        if !text.isEmpty { text += "\n" }
        text += "[[\(path)]]\n"
    }

    private mutating func line(_ key: String, _ value: String) { text += "\(key) = \(value)\n" }

    /// A TOML basic string: quotes, backslashes and control characters escaped.
    public static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where u.value < 0x20 || u.value == 0x7f:
                let hex = String(u.value, radix: 16, uppercase: true)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}
