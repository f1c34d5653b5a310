import TOMLKit
import VireoDaemon

extension NetworkConfig {
    /// Reads one `[[network]]` table (its problems go to `r`'s document):
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
    /// hosts = ["compute-1"]               # optional: only these authenticated hosts may claim it
    /// ```
    public init?(toml r: TOMLTableReader) {
        var n = NetworkConfig(reading: r)
        for p in r.tables("port") {
            let name = p.requiredString("name", example: "vm1")
            let macs = p.macs("allowed_macs")
            let hosts = p.list("hosts")
            if let name { n?.ports.append(PortConfig(name: name, allowedMACs: macs, hosts: hosts)) }
        }
        guard let n else { return nil }
        self = n
    }

    /// Parses one `[[network]]` table (the `index`th), appending every problem to `problems`.
    public init?(table t: TOMLTable, index: Int, problems: inout [String]) {
        let r = TOMLTableReader(t, label: t["name"]?.string.map { "network '\($0)'" } ?? "network #\(index)", path: "network")
        let n = NetworkConfig(toml: r)
        problems += r.finish()
        guard let n else { return nil }
        self = n
    }
}
