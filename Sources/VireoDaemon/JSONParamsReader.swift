import VireoSys

/// The `ConfigReader` over a control request's parameters (a JSON object): the same keys,
/// types and checks as a TOML table, so an export made through the API is read by the same
/// code as one in the file (`ExportConfig(reading:)`). Problems are prefixed with `label`
/// ("params") and reported by the control method as "invalid params".
public final class JSONParamsReader: ConfigReader {
    private let members: [String: JSONValue]
    private let label: String
    private var lines: [String] = []
    private var known: [String] = []
    private var finished = false

    /// A reader over `params`; anything but an object (or absent: no keys) is a problem.
    public init(_ params: JSONValue?, label: String = "params") {
        self.label = label
        switch params {
        case nil, .null?: members = [:]
        case .object(let o)?: members = o
        case let other?:
            members = [:]
            lines.append("\(label) must be an object, not \(other.kind)")
        }
    }

    public func problem(_ message: String) { lines.append(label.isEmpty ? message : "\(label): \(message)") }
    public func has(_ key: String) -> Bool { members[key] != nil }
    public func spelled(_ key: String) -> String { key }
    public func missing(_ key: String, example: String) { problem("\(key) is missing (e.g. \"\(key)\": \"\(example)\")") }

    public func string(_ key: String, what: String?) -> String? {
        guard let s = value(key, mustBe: what ?? "a string", { $0.string }) else { return nil }
        if s.isEmpty {
            problem("\(key) must not be empty")
            return nil
        }
        return s
    }

    public func int(_ key: String) -> Int? { value(key, mustBe: "an integer") { $0.int } }

    public func bool(_ key: String, aliases: [String]) -> Bool? { value(key, mustBe: "true or false") { $0.bool } }

    public func byteCount(_ key: String) -> Int? {
        value(key, mustBe: "a byte count such as 4096, \"64M\" or \"1G\"") { v in
            if let n = v.int { return n >= 0 ? n : nil }
            return v.string.flatMap { parseByteCount($0) }
        }
    }

    public func duration(_ key: String) -> UInt64? {
        value(key, mustBe: "a duration such as \"120s\", \"500ms\" or \"2m\", or a number of seconds") { v in
            if let n = v.int {
                guard n >= 0 else { return nil }
                let (ns, overflow) = UInt64(n).multipliedReportingOverflow(by: 1_000_000_000)
                return overflow ? nil : ns
            }
            return v.string.flatMap { parseDuration($0) }
        }
    }

    public func list(_ key: String) -> [String]? {
        value(key, mustBe: "an array of strings") { v in
            guard let strings = v.array?.map(\.string), !strings.contains(nil) else { return nil }
            return strings.compactMap { $0 }
        }
    }

    public func finish() -> [String] {
        if !finished {
            finished = true
            for key in members.keys.sorted() where !known.contains(key) {
                problem("unknown parameter '\(key)'" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
            }
        }
        return lines
    }

    private func value<T>(_ key: String, mustBe what: String, _ convert: (JSONValue) -> T?) -> T? {
        if !known.contains(key) { known.append(key) }
        guard let v = members[key] else { return nil }
        guard let t = convert(v) else {
            problem("\(key) must be \(what), not \(v.kind)")
            return nil
        }
        return t
    }
}
