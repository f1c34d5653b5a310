import VireoDaemon

extension DiskConfig {
    /// Parses one `--disk` value:
    /// `socket=PATH,target=HOST:PORT[,HOST:PORT...],export=NAME[,queues=N][,queue-depth=N][,ro][,loss-timeout=120s]`
    /// `[,target-key-file=PATH][,target-name=NAME]`.
    public static func parse(diskOption text: String) throws(ConfigError) -> DiskConfig {
        let r = FlagReader(flag: "--disk", text: text)
        return try r.result(DiskConfig(reading: r))
    }

    /// Parses a TOML configuration with one `[[disk]]` table per disk:
    /// `socket`, `target`, `export`, `queues`, `queue_depth`, `read_only`, `loss_timeout = "120s"`.
    /// `source` names the file in messages.
    public static func parse(toml text: String, source: String = "config") throws(ConfigError) -> [DiskConfig] {
        let r = try TOMLTableReader(toml: text, source: source)
        let disks = r.tables("disk").compactMap { DiskConfig(reading: $0) }
        if !r.has("disk") { r.problem("no [[disk]] table") }
        return try r.result(disks)
    }

    /// One disk's keys, from a `--disk` value or a `[[disk]]` table, checked; every
    /// problem is recorded in `r` (nil: a required key is missing or wrong).
    init?(reading r: some ConfigReader) {
        let endpoint = r.deviceEndpoints(socketExample: "/run/vireo/vm1-disk0.sock")
        let export = r.targetName("export", example: "vol0")
        let queues = r.count("queues", in: 1...64, default: 1)
        let depth = r.count("queue_depth", in: 2...1024, default: DiskConfig.defaultQueueDepth, powerOfTwo: true)
        let readOnly = r.bool("read_only", aliases: "ro", "readonly") ?? false
        let loss = r.duration("loss_timeout") ?? DiskConfig.defaultLossTimeoutNanoseconds
        if loss == 0 { r.problem("\(r.spelled("loss_timeout")) must be above zero") }
        let trust = r.targetTrust()
        var access = DiskConfig.RemoteAccess.windows
        if let text = r.string("remote_access", what: "windows or whole-memory") {
            if let a = DiskConfig.RemoteAccess(rawValue: text) { access = a } else {
                r.problem("\(r.spelled("remote_access")) '\(text)' must be windows or whole-memory")
            }
        }
        guard let endpoint, let export else { return nil }
        self.init(socket: endpoint.socket, target: endpoint.targets[0], export: export, queues: queues, queueDepth: depth,
                  readOnly: readOnly, lossTimeoutNanoseconds: loss)
        standbyTargets = Array(endpoint.targets.dropFirst())
        targetTrust = trust
        remoteAccess = access
    }

    /// Problems across several disks (duplicate sockets), one line each.
    public static func checkUnique(_ disks: [DiskConfig]) throws(ConfigError) {
        var seen: Set<String> = []
        var problems: [String] = []
        for d in disks where !seen.insert(d.socket).inserted {
            problems.append("socket \(d.socket) is used by more than one disk")
        }
        if disks.isEmpty { problems.append("no disk configured: give --disk or --config") }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
    }
}
