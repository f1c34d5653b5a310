import VireoDaemon
import VireoFabric
import VireoWire

/// The keys every initiator device (`DiskConfig`, `NicConfig`) reads alike, from its
/// flag (`--disk`, `--nic`) or its table (`[[disk]]`, `[[nic]]`).
extension ConfigReader {
    /// `socket` and `target`, both required; a target that is no "host:port" is a problem.
    func deviceEndpoint(socketExample: String) -> (socket: String, target: FabricAddress)? {
        let socket = requiredString("socket", example: socketExample)
        var target: FabricAddress?
        if let text = requiredString("target", example: "10.99.0.1:4420") {
            do throws(FabricError) { target = try FabricAddress(parsing: text) } catch { problem("target '\(text)': \(error)") }
        }
        guard let socket, let target else { return nil }
        return (socket, target)
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
