import VireoDaemon

extension NetworkConfig {
    /// The keys a `--network` value and a `[[network]]` table share: `name`, `mtu`, `tap`,
    /// `aging`, `receive_buffers`, `max_ports`, `mac_table_size`, `allowed_macs`,
    /// `allowed_hosts`, `allow_any_host`. Each
    /// source reads its ports itself. Every problem is recorded in `r` (nil: no name).
    /// Not validated here (`problems()`).
    public init?(reading r: some ConfigReader) {
        let name = r.requiredString("name", example: "lan0")
        var n = NetworkConfig(name: name ?? "")
        if let v = r.int("mtu") { n.mtu = v }
        n.tap = r.string("tap", what: "an interface name")
        if let v = r.int("aging") { n.agingSeconds = v }
        if let v = r.int("receive_buffers") { n.receiveBuffers = v }
        if let v = r.int("max_ports") { n.maxPorts = v }
        if let v = r.int("mac_table_size") { n.macTableSize = v }
        n.allowedMACs = r.macs("allowed_macs")
        n.access = EndpointAccessConfig(reading: r)
        guard name != nil else { return nil }
        self = n
    }
}
