import VireoDaemon
import VireoWire

extension ConfigReader {
    /// The MAC addresses listed under `key` (nil: absent or not a list); an entry that is
    /// not a MAC address is a problem.
    func macs(_ key: String) -> [MACAddress]? {
        guard let entries = list(key) else { return nil }
        var out: [MACAddress] = []
        for entry in entries {
            if let mac = MACAddress(entry) { out.append(mac) } else {
                problem("\(spelled(key)) entry '\(entry)' is not a MAC address")
            }
        }
        return out
    }
}
