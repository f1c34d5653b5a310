import VireoDaemon
import TOMLKit

extension DiskConfig {
    /// Parses one `--disk` value:
    /// `socket=PATH,target=HOST:PORT,export=NAME[,queues=N][,queue-depth=N][,ro][,loss-timeout=120s]`.
    public static func parse(diskOption text: String) throws(ConfigError) -> DiskConfig {
        var problems: [String] = []
        var f = DiskFields()
        let context = "--disk \(text)"
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let kv = item.split(separator: "=", maxSplits: 1)
            let key = String(kv[0])
            let value = kv.count > 1 ? String(kv[1]) : nil
            func need() -> String? {
                if value == nil || value!.isEmpty {
                    problems.append("\(context): \(key) needs a value (\(key)=...)")
                    f.reported.insert(key)
                }
                return value
            }
            func int() -> Int? {
                guard let v = need() else { return nil }
                guard let n = Int(v) else { problems.append("\(context): \(key) takes a number, not '\(v)'"); return nil }
                return n
            }
            switch key {
            case "socket": f.socket = need()
            case "target": f.target = need()
            case "export": f.export = need()
            case "queues": f.queues = int()
            case "queue-depth", "queue_depth": f.queueDepth = int()
            case "ro", "read-only", "readonly":
                if let v = value, v != "on", v != "true", v != "1" { if v == "off" || v == "false" || v == "0" { continue }
                    problems.append("\(context): ro takes no value (or on/off), not '\(v)'") }
                f.readOnly = true
            case "loss-timeout", "loss_timeout": f.lossTimeout = need()
            default:
                problems.append("\(context): unknown key '\(key)' (known: socket, target, export, queues, queue-depth, ro, loss-timeout)")
            }
        }
        let cfg = f.validated(context: context, problems: &problems)
        guard problems.isEmpty, let cfg else { throw ConfigError(problems: problems) }
        return cfg
    }

    /// Parses a TOML configuration with one `[[disk]]` table per disk:
    /// `socket`, `target`, `export`, `queues`, `queue_depth`, `read_only`, `loss_timeout = "120s"`.
    /// `source` names the file in messages.
    public static func parse(toml text: String, source: String = "config") throws(ConfigError) -> [DiskConfig] {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            throw ConfigError(problems: ["\(source): \(error)"])
        }
        var problems: [String] = []
        for key in table.keys where key != "disk" {
            problems.append("\(source): unknown top-level key '\(key)' (expected [[disk]] tables)")
        }
        guard let disks = table["disk"] else {
            throw ConfigError(problems: problems + ["\(source): no [[disk]] table"])
        }
        guard let array = disks.array else {
            throw ConfigError(problems: problems + ["\(source): 'disk' must be an array of tables ([[disk]])"])
        }
        let out = parse(tomlArray: array, source: source, problems: &problems)
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return out
    }

    /// The disks of one `[[disk]]` array; problems are appended, one line each.
    static func parse(tomlArray array: TOMLArray, source: String, problems: inout [String]) -> [DiskConfig] {
        var out: [DiskConfig] = []
        for (i, element) in array.enumerated() {
            let context = "\(source): disk #\(i + 1)"
            guard let t = element.table else { problems.append("\(context): not a table"); continue }
            var f = DiskFields()
            for key in t.keys {
                let v = t[key]!
                func str() -> String? {
                    if let s = v.string { return s }
                    problems.append("\(context): \(key) must be a string"); f.reported.insert(key); return nil
                }
                func int() -> Int? {
                    if let n = v.int { return n }
                    problems.append("\(context): \(key) must be an integer"); f.reported.insert(key); return nil
                }
                switch key {
                case "socket": f.socket = str()
                case "target": f.target = str()
                case "export": f.export = str()
                case "queues": f.queues = int()
                case "queue_depth": f.queueDepth = int()
                case "read_only":
                    if let b = v.bool { f.readOnly = b } else { problems.append("\(context): read_only must be true or false") }
                case "loss_timeout":
                    if let n = v.int { f.lossTimeout = "\(n)s" } else { f.lossTimeout = str() }
                default:
                    problems.append("\(context): unknown key '\(key)' (known: socket, target, export, queues, queue_depth, read_only, loss_timeout)")
                }
            }
            if let c = f.validated(context: context, problems: &problems) { out.append(c) }
        }
        return out
    }

    /// Problems across several disks (duplicate sockets), one line each.
    public static func checkUnique(_ disks: [DiskConfig]) throws(ConfigError) {
        var seen: Set<String> = []
        var problems: [String] = []
        for d in disks where !seen.insert(d.socket).inserted {
            problems.append("socket \(d.socket) is used by more than one disk")
        }
        if disks.isEmpty { problems.append("no disk configured: give --disk or --config") }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
    }
}
