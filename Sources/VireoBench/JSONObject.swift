/// A tiny ordered JSON object writer (numbers, strings, nested objects) for
/// the benchmarks' result files. Shared by `blk` and `net`.
public struct JSONObject: Sendable {
    private var members: [(String, String)] = []

    public init() {}

    public mutating func set(_ key: String, _ value: String) { members.append((key, Self.quote(value))) }
    public mutating func set(_ key: String, _ value: Int) { members.append((key, String(value))) }
    public mutating func set(_ key: String, _ value: UInt64) { members.append((key, String(value))) }
    /// Non-finite values are written as null.
    public mutating func set(_ key: String, _ value: Double) {
        members.append((key, value.isFinite ? Self.number(value) : "null"))
    }
    public mutating func set(_ key: String, _ value: Bool) { members.append((key, value ? "true" : "false")) }
    public mutating func set(_ key: String, _ value: JSONObject) { members.append((key, value.text)) }

    public var isEmpty: Bool { members.isEmpty }

    /// The object as one line of JSON.
    public var text: String {
        "{" + members.map { "\(Self.quote($0.0)):\($0.1)" }.joined(separator: ",") + "}"
    }

    static func number(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) + ".0" }
        return String(v)
    }

    static func quote(_ s: String) -> String {
        var o = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": o += "\\\""
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            case "\r": o += "\\r"
            case "\t": o += "\\t"
            default:
                if c.value < 0x20 {
                    let h = String(c.value, radix: 16)
                    o += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    o.unicodeScalars.append(c)
                }
            }
        }
        return o + "\""
    }
}
