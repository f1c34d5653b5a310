import VireoFabric
import VireoWire

/// One remote disk to serve: where the VMM connects, which target export
/// backs it, and how the virtqueues map onto fabric connections.
public struct DiskConfig: Equatable, Sendable {
    /// vhost-user socket path the VMM connects to.
    public var socket: String
    /// The target's address ("10.99.0.1:4420").
    public var target: FabricAddress
    /// Export name on the target (1–23 of A-Z a-z 0-9 . _ : -).
    public var export: String
    /// Virtqueues, each with its own connection (queue index i).
    public var queues: Int
    /// Virtqueue size offered and commands in flight asked per connection.
    public var queueDepth: Int
    /// Serve the disk read-only (connects without write access).
    public var readOnly: Bool
    /// How long a lost target may stay away before held requests fail with IOERR.
    public var lossTimeoutNanoseconds: UInt64

    public static let defaultQueueDepth = 128
    public static let defaultLossTimeoutNanoseconds: UInt64 = 120_000_000_000

    public init(socket: String, target: FabricAddress, export: String, queues: Int = 1,
                queueDepth: Int = DiskConfig.defaultQueueDepth, readOnly: Bool = false,
                lossTimeoutNanoseconds: UInt64 = DiskConfig.defaultLossTimeoutNanoseconds) {
        self.socket = socket
        self.target = target
        self.export = export
        self.queues = queues
        self.queueDepth = queueDepth
        self.readOnly = readOnly
        self.lossTimeoutNanoseconds = lossTimeoutNanoseconds
    }
}

/// The fields of one disk before validation (shared by `--disk` and TOML).
struct DiskFields {
    var socket: String?
    var target: String?
    var export: String?
    var queues: Int?
    var queueDepth: Int?
    var readOnly = false
    var lossTimeout: String?
    /// Keys already reported (e.g. wrong type): not reported again as missing.
    var reported: Set<String> = []

    /// Validates; appends one line per problem to `problems` (prefixed with `context`).
    func validated(context: String, problems: inout [String]) -> DiskConfig? {
        var bad = false
        func problem(_ s: String) { problems.append("\(context): \(s)"); bad = true }
        if socket?.isEmpty ?? true, !reported.contains("socket") { problem("socket is missing (e.g. socket=/run/vireo/vm1-disk0.sock)") }
        var address: FabricAddress?
        if let t = target {
            do throws(FabricError) { address = try FabricAddress(parsing: t) } catch { problem("target '\(t)': \(error)") }
        } else if !reported.contains("target") {
            problem("target is missing (e.g. target=10.99.0.1:4420)")
        }
        if let e = export {
            if !ConnectRequest.isValidName(e) { problem("export '\(e)' must be 1-23 characters of A-Z a-z 0-9 . _ : -") }
        } else if !reported.contains("export") {
            problem("export is missing (e.g. export=vol0)")
        }
        let q = queues ?? 1
        if !(1...64).contains(q) { problem("queues must be 1...64, not \(q)") }
        let depth = queueDepth ?? DiskConfig.defaultQueueDepth
        if !(2...1024).contains(depth) || depth & (depth - 1) != 0 {
            problem("queue-depth must be a power of two in 2...1024, not \(depth)")
        }
        var loss = DiskConfig.defaultLossTimeoutNanoseconds
        if let text = lossTimeout {
            if let ns = parseDuration(text), ns > 0 { loss = ns } else {
                problem("loss-timeout '\(text)' is not a duration such as 120s, 500ms or 2m")
            }
        }
        guard !bad, reported.isEmpty, let socket, let address, let export else { return nil }
        return DiskConfig(socket: socket, target: address, export: export, queues: q, queueDepth: depth,
                          readOnly: readOnly, lossTimeoutNanoseconds: loss)
    }
}

/// "120s", "500ms", "2m", "1h" or a bare number of seconds → nanoseconds.
func parseDuration(_ text: String) -> UInt64? {
    let t = text.trimmingCharacters(in: " ")
    let units: [(String, UInt64)] = [("ms", 1_000_000), ("s", 1_000_000_000), ("m", 60_000_000_000), ("h", 3_600_000_000_000)]
    for (suffix, scale) in units where t.hasSuffix(suffix) {
        guard let v = UInt64(t.dropLast(suffix.count)) else { return nil }
        let (r, o) = v.multipliedReportingOverflow(by: scale)
        return o ? nil : r
    }
    guard let v = UInt64(t) else { return nil }
    let (r, o) = v.multipliedReportingOverflow(by: 1_000_000_000)
    return o ? nil : r
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> Substring {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return s
    }
}
