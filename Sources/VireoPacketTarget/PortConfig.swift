import VireoWire

/// A named port of a network (`[[network.port]]`, or `port=NAME[:MAC+MAC]`
/// in `--network`): an initiator NIC claims it with `port=NAME` in its
/// `--nic` (every queue pair of that NIC joins it). Frames the port sends
/// from a source MAC outside `allowedMACs` are dropped and counted
/// (`notAllowed`). When a network lists ports, only those may connect.
public struct PortConfig: Equatable, Sendable {
    /// 1-15 characters of A-Z a-z 0-9 . _ -.
    public var name: String
    /// Source MACs this port may use (nil: any the network allows).
    public var allowedMACs: [MACAddress]?
    /// The hosts whose authenticated connections may claim this port (nil: any host the
    /// network admits). With it, no other host can squat the port, e.g. after a target restart.
    public var hosts: [String]?

    public init(name: String, allowedMACs: [MACAddress]? = nil, hosts: [String]? = nil) {
        self.name = name
        self.allowedMACs = allowedMACs
        self.hosts = hosts
    }

    /// Parses `NAME` or `NAME:MAC+MAC...` (the `--network port=` value).
    public init?(flag text: String, problems: inout [String]) {
        let parts = text.split(separator: ":", maxSplits: 1)
        guard let first = parts.first, !first.isEmpty else {
            problems.append("port needs a name (port=NAME or port=NAME:MAC+MAC)")
            return nil
        }
        name = String(first)
        allowedMACs = nil
        hosts = nil
        if parts.count > 1 {
            var macs: [MACAddress] = []
            for m in parts[1].split(separator: "+") {
                if let mac = MACAddress(String(m)) { macs.append(mac) } else {
                    problems.append("port \(name): '\(m)' is not a MAC address")
                }
            }
            allowedMACs = macs
        }
    }

    /// Every problem, one line each (empty: valid).
    func problems(network: String) -> [String] {
        var out: [String] = []
        let who = "network '\(network)' port '\(name)'"
        if !PortKey.isValidName(name) { out.append("\(who): name must be 1-15 characters of A-Z a-z 0-9 . _ -") }
        if let allowedMACs {
            if allowedMACs.isEmpty { out.append("\(who): allowed_macs is empty (the port could send nothing)") }
            if allowedMACs.contains(where: { $0.isMulticast || $0.isZero }) {
                out.append("\(who): allowed_macs must be unicast, nonzero addresses")
            }
        }
        return out
    }
}
