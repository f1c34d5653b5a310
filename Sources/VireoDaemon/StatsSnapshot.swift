import VireoSys

/// Counters rendered in the Prometheus text exposition format (version
/// 0.0.4): one `# HELP` and `# TYPE` line per metric family, then its
/// samples, families in the order they were first added.
///
/// Built on the control thread from racy reads of the data path's counters;
/// allocation is fine here.
public struct StatsSnapshot: Sendable {
    /// One metric family: a name, its help text, its type and its samples.
    struct Family: Sendable {
        let name: String
        let help: String
        let type: String
        var samples: [(labels: String, value: String)]
    }

    private(set) var families: [Family] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// Adds a counter sample (`name` should end in `_total`).
    public mutating func counter(_ name: String, _ value: UInt64, help: String, labels: KeyValuePairs<String, String> = [:]) {
        add(name, type: "counter", help: help, labels: labels, value: String(value))
    }

    /// Adds a gauge sample.
    public mutating func gauge(_ name: String, _ value: UInt64, help: String, labels: KeyValuePairs<String, String> = [:]) {
        add(name, type: "gauge", help: help, labels: labels, value: String(value))
    }

    /// Adds a counter sample with labels given as an array (built at run time).
    public mutating func counter(_ name: String, _ value: UInt64, help: String, labelPairs: [(String, String)]) {
        add(name, type: "counter", help: help, labelText: Self.labelText(labelPairs), value: String(value))
    }

    /// Whether a family named `name` has samples.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    private mutating func add(_ name: String, type: String, help: String, labels: KeyValuePairs<String, String>, value: String) {
        add(name, type: type, help: help, labelText: Self.labelText(labels.map { ($0.key, $0.value) }), value: value)
    }

    private mutating func add(_ name: String, type: String, help: String, labelText: String, value: String) {
        precondition(Self.isValidName(name), "invalid metric name \(name)")
        if let i = index[name] {
            families[i].samples.append((labelText, value))
        } else {
            index[name] = families.count
            families.append(Family(name: name, help: help, type: type, samples: [(labelText, value)]))
        }
    }

    /// The exposition text (ends with a newline).
    public func render() -> String {
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(Self.escapeHelp(f.help))\n"
            out += "# TYPE \(f.name) \(f.type)\n"
            for s in f.samples { out += "\(f.name)\(s.labels) \(s.value)\n" }
        }
        return out
    }

    static func labelText(_ pairs: [(String, String)]) -> String {
        guard !pairs.isEmpty else { return "" }
        let body = pairs.map { (k, v) -> String in
            precondition(isValidName(k) && !k.contains(":"), "invalid label name \(k)")
            return "\(k)=\"\(escapeLabel(v))\""
        }
        return "{" + body.joined(separator: ",") + "}"
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`
    static func isValidName(_ s: String) -> Bool {
        guard let first = s.utf8.first else { return false }
        func letter(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c == 95 || c == 58 }
        return letter(first) && s.utf8.allSatisfy { letter($0) || ($0 >= 48 && $0 <= 57) }
    }

    /// Label values escape backslash, double quote and line feed.
    static func escapeLabel(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": o += "\\\\"
            case "\"": o += "\\\""
            case "\n": o += "\\n"
            default: o.unicodeScalars.append(c)
            }
        }
        return o
    }

    /// Help text escapes backslash and line feed.
    static func escapeHelp(_ s: String) -> String {
        var o = ""
        for c in s.unicodeScalars {
            switch c {
            case "\\": o += "\\\\"
            case "\n": o += "\\n"
            default: o.unicodeScalars.append(c)
            }
        }
        return o
    }
}

extension StatsSnapshot {
    /// The process's data-path costs (`DataPathCosts.processTotals()`): every data-path
    /// thread's posts, arms, eventfd reads and writes, io_uring enters, sleeps and empty
    /// polls, as `vireo_datapath_<event>_total`. Both daemons write them under the same
    /// names, so the benchmark divides either's deltas by a job's I/Os the same way.
    public mutating func addDataPathCosts() {
        let totals = DataPathCosts.processTotals()
        for e in DataPathCosts.Event.allCases {
            counter("vireo_datapath_\(e.name)_total", totals[e.rawValue], help: e.help)
        }
    }
}
