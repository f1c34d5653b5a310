import VireoDaemon
import VireoRBD

extension ExportConfig {
    /// One export's keys, from a `--export` value (`ExportConfig(flag:)`) or an
    /// `[[export]]` table (`TargetConfig(toml:)`): `name`, exactly one of `file`, `device`,
    /// `memory = true` or `rbd = "pool/[namespace/]image[@snapshot]"` (with `ceph_cluster`,
    /// `io_timeout` and `group`), and `size`, `block_size`, `read_only`, `max_queues`,
    /// `max_queues_per_host`, `queue_depth`, `max_io`, `max_segments`, `inline_max`,
    /// `allowed_hosts`, `allow_any_host`.
    /// Every problem is recorded in `r` (nil: no name, or not exactly one backing). Not
    /// validated here (`problems()`).
    public init?(reading r: some ConfigReader) {
        let name = r.requiredString("name", example: "vol0")
        var backings: [Backing] = []
        if let path = r.string("file", what: "a path") { backings.append(.file(path)) }
        if let path = r.string("device", what: "a path") { backings.append(.device(path)) }
        if r.bool("memory") == true { backings.append(.memory) }
        if let text = r.string("rbd", what: "pool/[namespace/]image[@snapshot]") {
            if let spec = RBDImageSpec(text) { backings.append(.rbd(spec)) } else {
                r.problem("rbd '\(text)' must be pool/image, pool/namespace/image, optionally @snapshot")
            }
        }
        var e = ExportConfig(name: name ?? "", backing: backings.first ?? .memory)
        if let n = r.byteCount("size") { e.size = UInt64(n) }
        if let n = r.int("block_size") { e.blockSize = UInt32(clamping: n) }
        if case .rbd(let spec) = e.backing, spec.snapshot != nil { e.readOnly = true }
        if let b = r.bool("read_only", aliases: "ro", "readonly") { e.readOnly = b }
        e.cephCluster = r.string("ceph_cluster", what: "a [[ceph_cluster]] name")
        e.group = r.string("group", what: "a gateway group name")
        if let ns = r.duration("io_timeout") { e.ioTimeoutSeconds = Double(ns) / 1e9 }
        if let n = r.int("max_queues") { e.maxQueues = n }
        if let n = r.int("max_queues_per_host") { e.maxQueuesPerHost = n }
        if let n = r.int("queue_depth") { e.queueDepth = n }
        if let n = r.byteCount("max_io") { e.maxIO = n }
        if let n = r.int("max_segments") { e.maxSegments = n }
        if let n = r.byteCount("inline_max") { e.inlineMax = n }
        e.access = EndpointAccessConfig(reading: r)
        if backings.count != 1 { r.problem("needs exactly one of file, device, memory or rbd") }
        guard name != nil, backings.count == 1 else { return nil }
        self = e
    }
}
