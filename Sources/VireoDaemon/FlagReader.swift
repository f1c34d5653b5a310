import VireoSys

/// Typed values by key out of one `key=value,key,...` flag value, e.g.
/// `--disk socket=/s,target=10.99.0.1:4420,queues=2,ro`. Every problem is one line
/// starting with the flag and its text: "--disk TEXT: queues needs an integer, not 'x'".
///
/// Keys match with `-` and `_` alike. A key read as one value and given twice is a
/// problem ("KEY is given 2 times"); `strings(_:what:)` reads a repeatable key.
public final class FlagReader: ConfigReader {
    /// "FLAG TEXT", what every problem line starts with.
    public let context: String
    /// Every problem so far, one line each.
    public private(set) var problems: [String] = []
    private let items: [FlagItems.Item]
    /// Keys asked for (dashed), in order: the known keys, shown in "unknown key" lines.
    private var known: [String] = []
    /// The known keys and their aliases (dashed): what is not unknown.
    private var accepted: Set<String> = []
    private var finished = false

    /// A reader over `text`, the value of `flag` ("--disk").
    public init(flag: String, text: String) {
        context = "\(flag) \(text)"
        items = FlagItems(text).items
    }

    /// `key` with dashes for underscores: how keys are compared and shown.
    static func dashed(_ key: some StringProtocol) -> String { String(key.map { $0 == "_" ? "-" : $0 }) }

    public func problem(_ message: String) { problems.append("\(context): \(message)") }

    public func has(_ key: String) -> Bool { items.contains { Self.dashed($0.key) == Self.dashed(key) } }

    public func spelled(_ key: String) -> String { Self.dashed(key) }

    public func missing(_ key: String, example: String) {
        problem("\(spelled(key)) is missing (e.g. \(spelled(key))=\(example))")
    }

    public func string(_ key: String, what: String?) -> String? {
        guard let item = item(key) else { return nil }
        return value(item, needs: what) { $0 }
    }

    /// Every value given for a repeatable key, in order (`port=vm1,port=vm2`).
    public func strings(_ key: String, what: String? = nil) -> [String] {
        var out: [String] = []
        for item in items(key, aliases: []) {
            if let v = value(item, needs: what, { $0 }) { out.append(v) }
        }
        return out
    }

    public func int(_ key: String) -> Int? {
        guard let item = item(key) else { return nil }
        return value(item, needs: "an integer") { Int($0) }
    }

    public func bool(_ key: String, aliases: [String]) -> Bool? {
        guard let item = item(key, aliases: aliases) else { return nil }
        switch item.value {
        case nil, "on", "true", "1": return true
        case "off", "false", "0": return false
        case let v?:
            problem("\(item.key) takes no value (or on/off), not '\(v)'")
            return nil
        }
    }

    public func byteCount(_ key: String) -> Int? {
        guard let item = item(key) else { return nil }
        return value(item, needs: "a byte count such as 4096, 64M or 1G") { parseByteCount($0) }
    }

    public func duration(_ key: String) -> UInt64? {
        guard let item = item(key) else { return nil }
        return value(item, needs: "a duration such as 120s, 500ms or 2m") { parseDuration($0) }
    }

    public func list(_ key: String) -> [String]? {
        guard let item = item(key) else { return nil }
        return value(item, needs: "a list such as A+B") { $0.split(separator: "+").map(String.init) }
    }

    /// Reports every item whose key no one asked for: "unknown key 'K' (known: ...)".
    public func finish() -> [String] {
        if !finished {
            finished = true
            for item in items where !accepted.contains(Self.dashed(item.key)) {
                problem("unknown key '\(item.key)'" + (known.isEmpty ? "" : " (known: \(known.joined(separator: ", ")))"))
            }
        }
        return problems
    }

    /// The items given for `key` or one of its aliases; `key` is now known.
    private func items(_ key: String, aliases: [String]) -> [FlagItems.Item] {
        let names = ([key] + aliases).map { Self.dashed($0) }
        if !known.contains(names[0]) { known.append(names[0]) }
        accepted.formUnion(names)
        return items.filter { names.contains(Self.dashed($0.key)) }
    }

    /// The one item for `key`: nil when absent; given more than once is a problem.
    private func item(_ key: String, aliases: [String] = []) -> FlagItems.Item? {
        let found = items(key, aliases: aliases)
        if found.count > 1 { problem("\(Self.dashed(key)) is given \(found.count) times") }
        return found.last
    }

    /// `item`'s value converted: a bare key, an empty value or one `convert` refuses is a
    /// problem "KEY needs WHAT" (nil: "a value (KEY=...)").
    private func value<T>(_ item: FlagItems.Item, needs what: String?, _ convert: (String) -> T?) -> T? {
        let what = what ?? "a value (\(item.key)=...)"
        guard let v = item.value, !v.isEmpty else {
            problem("\(item.key) needs \(what)")
            return nil
        }
        guard let t = convert(v) else {
            problem("\(item.key) needs \(what), not '\(v)'")
            return nil
        }
        return t
    }
}
