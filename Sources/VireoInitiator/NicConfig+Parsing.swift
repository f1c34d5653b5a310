import VireoDaemon
import VireoWire

extension NicConfig {
    /// Parses one `--nic` value:
    /// `socket=PATH,target=HOST:PORT,network=NAME,mac=52:54:00:00:00:01[,queue-pairs=N][,queue-size=N][,port=NAME]`.
    public static func parse(nicOption text: String) throws(ConfigError) -> NicConfig {
        let r = FlagReader(flag: "--nic", text: text)
        return try r.result(NicConfig(reading: r))
    }

    /// One NIC's keys, from a `--nic` value or a `[[nic]]` table (`socket`, `target`,
    /// `network`, `mac`, `queue_pairs`, `queue_size`, `port`), checked; every problem is
    /// recorded in `r` (nil: a required key is missing or wrong).
    init?(reading r: some ConfigReader) {
        let endpoint = r.deviceEndpoint(socketExample: "/run/vireo/vm1-net0.sock")
        let network = r.targetName("network", example: "lan0")
        var mac: MACAddress?
        if let text = r.requiredString("mac", example: "52:54:00:00:00:01") {
            if let a = MACAddress(text) {
                if a.isMulticast { r.problem("mac \(text) is a multicast address (the first octet must be even)") }
                else if a.isZero { r.problem("mac \(text) is all zero") }
                else { mac = a }
            } else {
                r.problem("mac '\(text)' is not six hex octets such as 52:54:00:00:00:01")
            }
        }
        let pairs = r.count("queue_pairs", in: 1...32, default: 1)
        let size = r.count("queue_size", in: 16...1024, default: NicConfig.defaultQueueSize, powerOfTwo: true)
        let port = r.string("port")
        if let port, !PortKey.isValidName(port) { r.problem("port '\(port)' must be 1-15 characters of A-Z a-z 0-9 . _ -") }
        let trust = r.targetTrust()
        guard let endpoint, let network, let mac else { return nil }
        self.init(socket: endpoint.socket, target: endpoint.target, network: network, mac: mac, queuePairs: pairs,
                  queueSize: size, port: port)
        targetTrust = trust
    }
}
