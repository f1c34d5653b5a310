import TOMLKit
import VireoWire

extension NetworkConfig {
    /// Parses one `[[network]]` table, appending every problem to `problems`:
    ///
    /// ```toml
    /// [[network]]
    /// name = "lan0"
    /// mtu = 1500
    /// tap = "vireo-lan0"                  # optional uplink
    /// allowed_macs = ["52:54:00:12:34:56"] # optional
    /// aging = 300                         # seconds
    /// receive_buffers = 256
    /// max_ports = 64
    /// mac_table_size = 4096
    ///
    /// [[network.port]]                    # optional named ports
    /// name = "vm1"
    /// allowed_macs = ["52:54:00:00:0a:01"] # optional, this port only
    /// ```
    public init?(table t: TOMLTable, index: Int, problems: inout [String]) {
        let who = t["name"]?.string.map { "network '\($0)'" } ?? "network #\(index)"
        guard let name = t["name"]?.string else {
            problems.append("\(who): missing name")
            return nil
        }
        var n = NetworkConfig(name: name)
        func integer(_ key: String, _ body: (Int) -> Void) {
            if let v = t[key]?.int { body(v) } else { problems.append("\(who): \(key) must be an integer") }
        }
        for key in t.keys {
            switch key {
            case "name": break
            case "mtu": integer(key) { n.mtu = $0 }
            case "tap":
                if let s = t[key]?.string { n.tap = s } else { problems.append("\(who): tap must be an interface name") }
            case "aging": integer(key) { n.agingSeconds = $0 }
            case "receive_buffers": integer(key) { n.receiveBuffers = $0 }
            case "max_ports": integer(key) { n.maxPorts = $0 }
            case "mac_table_size": integer(key) { n.macTableSize = $0 }
            case "allowed_macs":
                guard let array = t[key]?.array else {
                    problems.append("\(who): allowed_macs must be an array of \"52:54:00:...\" strings")
                    continue
                }
                var macs: [MACAddress] = []
                for item in array {
                    if let s = item.string, let m = MACAddress(s) { macs.append(m) } else {
                        problems.append("\(who): allowed_macs entry \(item) is not a MAC address")
                    }
                }
                n.allowedMACs = macs
            case "port":
                guard let array = t[key]?.array else {
                    problems.append("\(who): port must be an array of tables ([[network.port]])")
                    continue
                }
                for (i, item) in array.enumerated() {
                    guard let pt = item.table, let pname = pt["name"]?.string else {
                        problems.append("\(who): port #\(i + 1) needs a name")
                        continue
                    }
                    var pc = PortConfig(name: pname)
                    for pk in pt.keys where pk != "name" {
                        guard pk == "allowed_macs" else {
                            problems.append("\(who): port '\(pname)': unknown key '\(pk)' (known: name, allowed_macs)")
                            continue
                        }
                        guard let macs = pt[pk]?.array else {
                            problems.append("\(who): port '\(pname)': allowed_macs must be an array of \"52:54:00:...\" strings")
                            continue
                        }
                        var list: [MACAddress] = []
                        for m in macs {
                            if let s = m.string, let mac = MACAddress(s) { list.append(mac) } else {
                                problems.append("\(who): port '\(pname)': allowed_macs entry \(m) is not a MAC address")
                            }
                        }
                        pc.allowedMACs = list
                    }
                    n.ports.append(pc)
                }
            default:
                problems.append("\(who): unknown key '\(key)'")
            }
        }
        self = n
    }
}
