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
        /// `suffix`: a histogram's `_bucket`, `_sum`, `_count` (empty otherwise).
        var samples: [(suffix: String, labels: String, pairs: [(String, String)], value: String)]
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

    /// Adds a gauge sample with labels given as an array.
    public mutating func gauge(_ name: String, _ value: UInt64, help: String, labelPairs: [(String, String)]) {
        add(name, type: "gauge", help: help, pairs: labelPairs, value: String(value))
    }

    /// Adds a counter sample with labels given as an array (built at run time).
    public mutating func counter(_ name: String, _ value: UInt64, help: String, labelPairs: [(String, String)]) {
        add(name, type: "counter", help: help, pairs: labelPairs, value: String(value))
    }

    /// Adds a histogram of durations (`name` should end in `_seconds`): cumulative buckets
    /// with their upper bounds in seconds (`le`), then `+Inf`, `_sum` and `_count`.
    public mutating func histogram(_ name: String, _ h: LatencyHistogram, help: String, labelPairs: [(String, String)]) {
        let snap = h.snapshot
        for (i, n) in snap.cumulative.enumerated() {
            add(name, suffix: "_bucket", type: "histogram", help: help,
                pairs: labelPairs + [("le", "\(LatencyHistogram.upperBoundSeconds(i))")], value: String(n))
        }
        add(name, suffix: "_bucket", type: "histogram", help: help, pairs: labelPairs + [("le", "+Inf")], value: String(snap.count))
        add(name, suffix: "_sum", type: "histogram", help: help, pairs: labelPairs, value: "\(Double(snap.sumNanoseconds) / 1e9)")
        add(name, suffix: "_count", type: "histogram", help: help, pairs: labelPairs, value: String(snap.count))
    }

    /// Whether a family named `name` has samples.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    private mutating func add(_ name: String, type: String, help: String, labels: KeyValuePairs<String, String>, value: String) {
        add(name, type: type, help: help, pairs: labels.map { ($0.key, $0.value) }, value: value)
    }

    private mutating func add(_ name: String, suffix: String = "", type: String, help: String, pairs: [(String, String)],
                              value: String) {
        precondition(Self.isValidName(name), "invalid metric name \(name)")
        let sample = (suffix, Self.labelText(pairs), pairs, value)
        if let i = index[name] {
            families[i].samples.append(sample)
        } else {
            index[name] = families.count
            families.append(Family(name: name, help: help, type: type, samples: [sample]))
        }
    }

    /// The samples as JSON (`stats_get`): one object per sample, `name`, `labels` (an object,
    /// absent when none) and `value`, in the exposition's order.
    public var json: JSONValue {
        var out: [JSONValue] = []
        for f in families {
            for s in f.samples {
                var o: [String: JSONValue] = ["name": .string(f.name + s.suffix), "type": .string(f.type)]
                if !s.pairs.isEmpty {
                    o["labels"] = .object(Dictionary(s.pairs.map { ($0.0, JSONValue.string($0.1)) }, uniquingKeysWith: { _, b in b }))
                }
                o["value"] = UInt64(s.value).map(JSONValue.init) ?? Double(s.value).map(JSONValue.init) ?? .string(s.value)
                out.append(.object(o))
            }
        }
        return .array(out)
    }

    /// The exposition text (ends with a newline).
    public func render() -> String {
        var out = ""
        for f in families {
            out += "# HELP \(f.name) \(Self.escapeHelp(f.help))\n"
            out += "# TYPE \(f.name) \(f.type)\n"
            for s in f.samples { out += "\(f.name)\(s.suffix)\(s.labels) \(s.value)\n" }
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
