import VireoBlockTarget
import VireoDaemon
import TOMLKit
import VireoPacketTarget
import VireoSys

extension TargetConfig {
    /// Parses a TOML document:
    ///
    /// ```toml
    /// listen = "10.99.0.1:4420"
    /// workers = 2
    /// busy_poll = false
    /// stats_file = "/run/vireo/target.prom"  # optional; counters, Prometheus text format
    /// stats_interval = 10
    /// keepalive = 5        # seconds idle and silent before a block connection's peer is probed
    /// peer_timeout = 15    # seconds without a completion, work posted, before the peer counts as gone
    /// [[export]]
    /// name = "vol0"
    /// file = "/var/lib/vireo/vol0.img"   # or device = "/dev/...", or memory = true
    /// size = "1G"
    /// block_size = 512
    /// read_only = false
    /// max_queues = 16
    /// max_queues_per_host = 16
    /// queue_depth = 128
    /// max_io = "1M"
    /// max_segments = 128
    /// inline_max = 4096
    /// [[network]]
    /// name = "lan0"
    /// mtu = 1500
    /// tap = "vireo-lan0"                    # optional uplink
    /// allowed_macs = ["52:54:00:12:34:56"]  # optional
    /// aging = 300
    /// ```
    ///
    /// Unknown keys and wrong types are problems; every problem is reported,
    /// one line each. The result is validated.
    public init(toml text: String) throws(ConfigError) {
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let e as TOMLParseError {
            throw ConfigError("TOML syntax error at line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        } catch {
            throw ConfigError("TOML syntax error: \(error)")
        }
        var problems: [String] = []
        var config = TargetConfig()
        for key in root.keys {
            guard let value = root[key] else { continue }
            switch key {
            case "listen":
                if let s = value.string { config.listen = s } else { problems.append("listen must be a string \"host:port\"") }
            case "workers":
                if let n = value.int { config.workers = n } else { problems.append("workers must be an integer") }
            case "stats_file":
                if let p = value.string, !p.isEmpty { config.statsFile = p } else { problems.append("stats_file must be a path") }
            case "stats_interval":
                if let d = value.double ?? value.int.map(Double.init), d > 0 { config.statsIntervalSeconds = d } else {
                    problems.append("stats_interval must be a positive number of seconds")
                }
            case "keepalive":
                if let d = value.double ?? value.int.map(Double.init) { config.keepaliveSeconds = d } else {
                    problems.append("keepalive must be a number of seconds")
                }
            case "peer_timeout":
                if let d = value.double ?? value.int.map(Double.init) { config.peerTimeoutSeconds = d } else {
                    problems.append("peer_timeout must be a number of seconds")
                }
            case "busy_poll":
                if let b = value.bool { config.busyPoll = b } else { problems.append("busy_poll must be true or false") }
            case "export":
                guard let array = value.array else {
                    problems.append("export must be an array of tables ([[export]])")
                    continue
                }
                for (i, item) in array.enumerated() {
                    guard let table = item.table else {
                        problems.append("export #\(i + 1) must be a table")
                        continue
                    }
                    if let e = Self.export(table, index: i + 1, problems: &problems) { config.exports.append(e) }
                }
            case "network":
                guard let array = value.array else {
                    problems.append("network must be an array of tables ([[network]])")
                    continue
                }
                for (i, item) in array.enumerated() {
                    guard let table = item.table else {
                        problems.append("network #\(i + 1) must be a table")
                        continue
                    }
                    if let n = NetworkConfig(table: table, index: i + 1, problems: &problems) { config.networks.append(n) }
                }
            default:
                problems.append("unknown key '\(key)'")
            }
        }
        if problems.isEmpty { problems = config.problems() }
        if !problems.isEmpty { throw ConfigError(problems: problems) }
        self = config
    }

    private static func export(_ t: TOMLTable, index: Int, problems: inout [String]) -> ExportConfig? {
        let who = t["name"]?.string.map { "export '\($0)'" } ?? "export #\(index)"
        guard let name = t["name"]?.string else {
            problems.append("\(who): missing name")
            return nil
        }
        var backings: [ExportConfig.Backing] = []
        var e = ExportConfig(name: name, backing: .memory)
        func integer(_ key: String, _ body: (Int) -> Void) {
            guard let v = t[key] else { return }
            if let n = v.int { body(n) } else { problems.append("\(who): \(key) must be an integer") }
        }
        func bytes(_ key: String) -> Int?? {
            guard let v = t[key] else { return .none }
            if let n = v.int, n >= 0 { return .some(n) }
            if let s = v.string, let n = parseByteCount(s) { return .some(n) }
            problems.append("\(who): \(key) must be a byte count such as 4096, \"64M\" or \"1G\"")
            return .some(nil)
        }
        for key in t.keys {
            switch key {
            case "name":
                break
            case "file":
                if let s = t[key]?.string { backings.append(.file(s)) } else { problems.append("\(who): file must be a path") }
            case "device":
                if let s = t[key]?.string { backings.append(.device(s)) } else { problems.append("\(who): device must be a path") }
            case "memory":
                if let b = t[key]?.bool { if b { backings.append(.memory) } } else { problems.append("\(who): memory must be true or false") }
            case "size":
                if case .some(.some(let n)) = bytes(key) { e.size = UInt64(n) }
            case "max_io":
                if case .some(.some(let n)) = bytes(key) { e.maxIO = n }
            case "inline_max":
                if case .some(.some(let n)) = bytes(key) { e.inlineMax = n }
            case "block_size":
                integer(key) { e.blockSize = UInt32(clamping: $0) }
            case "read_only":
                if let b = t[key]?.bool { e.readOnly = b } else { problems.append("\(who): read_only must be true or false") }
            case "max_queues":
                integer(key) { e.maxQueues = $0 }
            case "max_queues_per_host":
                integer(key) { e.maxQueuesPerHost = $0 }
            case "queue_depth":
                integer(key) { e.queueDepth = $0 }
            case "max_segments":
                integer(key) { e.maxSegments = $0 }
            default:
                problems.append("\(who): unknown key '\(key)'")
            }
        }
        guard backings.count == 1 else {
            problems.append("\(who): needs exactly one of file, device or memory = true")
            return nil
        }
        e.backing = backings[0]
        return e
    }
}
