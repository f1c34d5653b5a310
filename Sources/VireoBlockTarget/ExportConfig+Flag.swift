import VireoDaemon
import VireoSys

extension ExportConfig {
    /// Parses a `--export` value: comma-separated `key=value` items, e.g.
    /// `name=vol0,file=/tmp/vol0.img,size=64M,ro,block-size=4096`.
    ///
    /// Keys: name, file, device, memory (bare), size, ro (bare) / read-only,
    /// block-size, max-queues, max-queues-per-host, queue-depth, max-io,
    /// max-segments, inline-max. Not validated here (`TargetConfig.validate`).
    public init(flag text: String) throws(ConfigError) {
        var name: String?
        var backings: [Backing] = []
        var e = ExportConfig(name: "", backing: .memory)
        var problems: [String] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = item.split(separator: "=", maxSplits: 1)
            let key = String(parts[0])
            let value = parts.count > 1 ? String(parts[1]) : nil
            func int(_ body: (Int) -> Void) {
                if let v = value, let n = Int(v) { body(n) } else { problems.append("--export \(text): \(key) needs an integer") }
            }
            func bytes(_ body: (Int) -> Void) {
                if let v = value, let n = parseByteCount(v) { body(n) } else {
                    problems.append("--export \(text): \(key) needs a byte count such as 4096, 64M or 1G")
                }
            }
            switch key {
            case "name": name = value
            case "file": if let value { backings.append(.file(value)) } else { problems.append("--export \(text): file needs a path") }
            case "device": if let value { backings.append(.device(value)) } else { problems.append("--export \(text): device needs a path") }
            case "memory": if value == nil || value == "true" { backings.append(.memory) }
            case "size": bytes { e.size = UInt64($0) }
            case "ro", "read-only", "readonly": e.readOnly = value == nil || value == "true"
            case "block-size": int { e.blockSize = UInt32(clamping: $0) }
            case "max-queues": int { e.maxQueues = $0 }
            case "max-queues-per-host": int { e.maxQueuesPerHost = $0 }
            case "queue-depth": int { e.queueDepth = $0 }
            case "max-io": bytes { e.maxIO = $0 }
            case "max-segments": int { e.maxSegments = $0 }
            case "inline-max": bytes { e.inlineMax = $0 }
            default: problems.append("--export \(text): unknown key '\(key)'")
            }
        }
        if name == nil || name!.isEmpty { problems.append("--export \(text): missing name=") }
        if backings.count != 1 { problems.append("--export \(text): needs exactly one of file=, device= or memory") }
        if !problems.isEmpty { throw ConfigError(problems: problems) }
        e.name = name!
        e.backing = backings[0]
        self = e
    }
}
