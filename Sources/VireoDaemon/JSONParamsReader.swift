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
        value(key, mustBe: ConfigValueRules.byteCountWhat) { ConfigValueRules.byteCount(int: $0.int, string: $0.string) }
    }

    public func duration(_ key: String) -> UInt64? {
        value(key, mustBe: ConfigValueRules.durationWhat) { ConfigValueRules.duration(int: $0.int, string: $0.string) }
    }

    public func list(_ key: String) -> [String]? {
        value(key, mustBe: ConfigValueRules.stringsWhat) { ConfigValueRules.strings($0.array?.map(\.string)) }
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
