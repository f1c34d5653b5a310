import VireoDaemon
import VireoWire

extension NetworkConfig {
    /// Parses a `--network` value: comma-separated `key=value` items, e.g.
    /// `name=lan0,mtu=9000,tap=vtap0`.
    ///
    /// Keys: name, mtu, tap, aging (seconds), receive-buffers, max-ports,
    /// mac-table-size, allowed-macs (`+`-separated MACs), port (`NAME` or
    /// `NAME:MAC+MAC`, repeatable: a named port and its allow-list). Not validated here
    /// (`problems()`, called by the target's config validation).
    public init(flag text: String) throws(ConfigError) {
        var name: String?
        var n = NetworkConfig(name: "")
        var problems: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1)
            let key = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : nil
            func int(_ body: (Int) -> Void) {
                if let v = value, let x = Int(v) { body(x) } else { problems.append("--network \(text): \(key) needs an integer") }
            }
            switch key {
            case "name": name = value
            case "mtu": int { n.mtu = $0 }
            case "tap": if let value, !value.isEmpty { n.tap = value } else { problems.append("--network \(text): tap needs an interface name") }
            case "aging": int { n.agingSeconds = $0 }
            case "receive-buffers": int { n.receiveBuffers = $0 }
            case "max-ports": int { n.maxPorts = $0 }
            case "mac-table-size": int { n.macTableSize = $0 }
            case "allowed-macs":
                var macs: [MACAddress] = []
                for m in (value ?? "").split(separator: "+") {
                    if let mac = MACAddress(String(m)) { macs.append(mac) } else {
                        problems.append("--network \(text): '\(m)' is not a MAC address")
                    }
                }
                n.allowedMACs = macs
            case "port":
                var ps: [String] = []
                if let p = PortConfig(flag: value ?? "", problems: &ps) { n.ports.append(p) }
                problems += ps.map { "--network \(text): \($0)" }
            default: problems.append("--network \(text): unknown key '\(key)'")
            }
        }
        if name == nil || name!.isEmpty { problems.append("--network \(text): missing name=") }
        if !problems.isEmpty { throw ConfigError(problems: problems) }
        n.name = name!
        self = n
    }
}
