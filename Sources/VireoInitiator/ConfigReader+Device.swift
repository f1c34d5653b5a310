import VireoDaemon
import VireoFabric
import VireoWire

/// The keys every initiator device (`DiskConfig`, `NicConfig`) reads alike, from its
/// flag (`--disk`, `--nic`) or its table (`[[disk]]`, `[[nic]]`).
extension ConfigReader {
    /// `socket` and `target`, both required; a target that is no "host:port" is a problem.
    func deviceEndpoint(socketExample: String) -> (socket: String, target: FabricAddress)? {
        guard let (socket, targets) = deviceEndpoints(socketExample: socketExample) else { return nil }
        if targets.count > 1 { problem("\(spelled("target")) takes one \"host:port\" here (several paths are for disks)") }
        return (socket, targets[0])
    }

    /// `socket` and `target`, both required; `target` is one "host:port" or several,
    /// comma-separated (a disk's paths through a gateway group, in order of preference).
    func deviceEndpoints(socketExample: String) -> (socket: String, targets: [FabricAddress])? {
        let socket = requiredString("socket", example: socketExample)
        var targets: [FabricAddress] = []
        var bad = false
        if let text = requiredString("target", example: "10.99.0.1:4420") {
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                do throws(FabricError) {
                    let a = try FabricAddress(parsing: String(part))
                    if targets.contains(a) { problem("\(spelled("target")) '\(part)' is given twice"); bad = true }
                    targets.append(a)
                } catch {
                    problem("target '\(part)': \(error)")
                    bad = true
                }
            }
            if targets.count > DiskConfig.maxPaths {
                problem("\(spelled("target")) lists \(targets.count) paths; at most \(DiskConfig.maxPaths)")
                bad = true
            }
        }
        guard let socket, !targets.isEmpty, !bad else { return nil }
        return (socket, targets)
    }

    /// A required name of something on the target (an export, a network).
    func targetName(_ key: String, example: String) -> String? {
        let name = requiredString(key, example: example)
        if let name, !ConnectRequest.isValidName(name) {
            problem("\(key) '\(name)' must be 1-\(Wire.maxNameLength) characters of A-Z a-z 0-9 . _ : -")
        }
        return name
    }

    /// A count within `range` (a power of two when `powerOfTwo`), `fallback` when absent.
    func count(_ key: String, in range: ClosedRange<Int>, default fallback: Int, powerOfTwo: Bool = false) -> Int {
        let n = int(key) ?? fallback
        if powerOfTwo, !range.contains(n) || n & (n - 1) != 0 {
            problem("\(spelled(key)) must be a power of two in \(range), not \(n)")
        } else if !range.contains(n) {
            problem("\(spelled(key)) must be \(range), not \(n)")
        }
        return n
    }
}
