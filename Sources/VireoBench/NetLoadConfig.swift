import VireoSys

/// What `vireo-bench net` runs: frames of `frameBytes` from the NIC on
/// `txSocket` to the NIC on `rxSocket` for `runtime` seconds after `ramp`.
public struct NetLoadConfig: Sendable, Equatable {
    public var txSocket: String
    public var rxSocket: String
    /// Ethernet frame length without the 12-byte virtio-net header.
    public var frameBytes = 1500
    public var runtime = 10.0
    public var ramp = 1.0
    public var queueSize = 256
    /// Guest memory per NIC (each front-end has its own memfd).
    public var memoryBytes = 256 << 20
    /// Processes whose CPU time is reported, by name (e.g. "initiator-a").
    public var pids: [NamedPID] = []
    public var label = ""
    /// The target's stats file (`--stats target=PATH`, with `--pid target=PID`): the switch's
    /// drops and copies over the window.
    public var targetStats: String?
    /// Spin this long on an empty used ring before sleeping on the call eventfd.
    public var spinNanoseconds: UInt64 = 50_000
    /// How long to wait for link up and the hello frame.
    public var setupTimeoutMilliseconds = 10_000

    /// A process to sample: `name=PID`.
    public struct NamedPID: Sendable, Equatable {
        public var name: String
        public var pid: Int32
        public init(name: String, pid: Int32) { self.name = name; self.pid = pid }

        /// Parses `name=PID` (e.g. `initiator-a=1234`).
        public static func parse(_ text: String) throws(NetLoadError) -> NamedPID {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let pid = Int32(parts[1]), pid > 0 else {
                throw .invalid("--pid \(text): expected NAME=PID (e.g. initiator-a=1234)")
            }
            return NamedPID(name: parts[0], pid: pid)
        }
    }

    public init(txSocket: String, rxSocket: String) {
        self.txSocket = txSocket
        self.rxSocket = rxSocket
    }

    /// Checks values that do not need the devices.
    public func validate() throws(NetLoadError) {
        guard txSocket != rxSocket else { throw .invalid("--tx-socket and --rx-socket must be two NICs") }
        guard runtime > 0, runtime.isFinite else { throw .invalid("--runtime must be > 0 seconds") }
        guard ramp >= 0, ramp.isFinite else { throw .invalid("--ramp must be >= 0 seconds") }
        guard frameBytes >= NetFrameLayout.minFrameBytes, frameBytes <= 65535 + 18 else {
            throw .invalid("--frame-bytes \(frameBytes) not in \(NetFrameLayout.minFrameBytes)...\(65535 + 18)")
        }
        guard queueSize >= 2, queueSize <= 32768, queueSize & (queueSize - 1) == 0 else {
            throw .invalid("--queue-size \(queueSize) is not a power of two in 2...32768")
        }
        var seen = Set<String>()
        for p in pids where !seen.insert(p.name).inserted { throw .invalid("--pid \(p.name) given twice") }
    }
}
