import VireoDaemon
import TOMLKit

/// Everything `vireo-initiator serve` serves: remote disks and remote NICs.
public struct ServeConfig: Equatable, Sendable {
    public var disks: [DiskConfig]
    public var nics: [NicConfig]
    /// Where the daemon writes its counters (Prometheus text format), if anywhere (`stats_file`).
    public var statsFile: String?
    /// Seconds between stats file writes (`stats_interval`).
    public var statsIntervalSeconds: Double?

    public init(disks: [DiskConfig] = [], nics: [NicConfig] = []) {
        self.disks = disks
        self.nics = nics
    }

    /// Parses a TOML configuration with `[[disk]]` and `[[nic]]` tables (at
    /// least one of them). `source` names the file in messages.
    public static func parse(toml text: String, source: String = "config") throws(ConfigError) -> ServeConfig {
        let table: TOMLTable
        do { table = try TOMLTable(string: text) } catch {
            throw ConfigError(problems: ["\(source): \(error)"])
        }
        var problems: [String] = []
        for key in table.keys where !["disk", "nic", "stats_file", "stats_interval"].contains(key) {
            problems.append("\(source): unknown top-level key '\(key)' (expected [[disk]] and [[nic]] tables, stats_file, stats_interval)")
        }
        var out = ServeConfig()
        if let v = table["stats_file"] {
            if let path = v.string, !path.isEmpty { out.statsFile = path } else {
                problems.append("\(source): 'stats_file' must be a non-empty string")
            }
        }
        if let v = table["stats_interval"] {
            if let d = v.double ?? v.int.map(Double.init), d > 0 { out.statsIntervalSeconds = d } else {
                problems.append("\(source): 'stats_interval' must be a positive number of seconds")
            }
        }
        if let disks = table["disk"] {
            if let array = disks.array {
                out.disks = DiskConfig.parse(tomlArray: array, source: source, problems: &problems)
            } else {
                problems.append("\(source): 'disk' must be an array of tables ([[disk]])")
            }
        }
        if let nics = table["nic"] {
            if let array = nics.array {
                out.nics = NicConfig.parse(tomlArray: array, source: source, problems: &problems)
            } else {
                problems.append("\(source): 'nic' must be an array of tables ([[nic]])")
            }
        }
        if table["disk"] == nil && table["nic"] == nil { problems.append("\(source): no [[disk]] or [[nic]] table") }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return out
    }

    /// Problems across devices (a socket used twice; nothing configured), one line each.
    public func checkUnique() throws(ConfigError) {
        var seen: Set<String> = []
        var problems: [String] = []
        for s in disks.map(\.socket) + nics.map(\.socket) where !seen.insert(s).inserted {
            problems.append("socket \(s) is used by more than one device")
        }
        var macs: Set<UInt64> = []
        for n in nics where !macs.insert(n.mac.rawValue).inserted {
            problems.append("mac \(n.mac) is used by more than one nic")
        }
        if disks.isEmpty && nics.isEmpty { problems.append("nothing configured: give --disk, --nic or --config") }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
    }
}
