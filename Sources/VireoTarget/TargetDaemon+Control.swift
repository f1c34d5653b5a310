import Logging
import VireoAuth
import VireoBlockTarget
import VireoDaemon
import VireoWire

extension TargetDaemon {
    /// The target's control API (docs/api.md). Methods that read or change the daemon's
    /// endpoints run on its control thread (through `mailbox`), between connection events,
    /// so a change touches only what it names: other exports' connections and I/O go on.
    public func controlMethods() -> [ControlMethod] {
        [
            ControlMethod("version_get", "The daemon's name, version and wire protocol version.") { _ throws(ControlError) in
                ["daemon": "vireo-target", "version": .string(VireoVersion.current), "wire_protocol": .int(Int64(Wire.version))]
            },
            ControlMethod("config_get", "The running configuration as TOML: the startup file plus every change since; a daemon started from it serves the same endpoints.") { [self] _ throws(ControlError) in
                try mailbox.run { [self] in .success(["toml": .string(runningConfig.tomlText)]) }
            },
            ControlMethod("stats_get", "Every counter, as the stats file has them: name, labels, value.") { [self] _ throws(ControlError) in
                ["metrics": statsSnapshot().json]
            },
            ControlMethod("export_list", "Every export: its configuration, capacity, connected queues and state (serving, or draining after a forced delete).",
                          parameters: ["name (string, optional): only this export"]) { [self] params throws(ControlError) in
                let name = try Self.optionalName(params)
                return try mailbox.run { [self] in exportList(name: name) }
            },
            ControlMethod("export_create", "Adds an export and starts serving it; the keys are the TOML [[export]] table's.",
                          parameters: Self.exportParameters) { [self] params throws(ControlError) in
                try mailbox.run { [self] in createExport(params) }
            },
            ControlMethod("export_delete", "Removes an export. Refused while a host is connected to it, unless force: then its connections are dropped (their guests' I/O fails) and the name stays taken until they are gone.",
                          parameters: ["name (string, required)", "force (bool, default false): drop the export's connections"]) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let name = r.requiredString("name", example: "vol0")
                let force = r.bool("force") ?? false
                let problems = r.finish()
                guard problems.isEmpty, let name else { throw .invalidParams(problems) }
                return try mailbox.run { [self] in deleteExport(name, force: force) }
            },
            ControlMethod("network_list", "Every network (packet endpoint): its configuration and connected ports.") { [self] _ throws(ControlError) in
                .array(networks.keys.sorted().map { n -> JSONValue in
                    let net = networks[n]!
                    return ["name": .string(n), "mtu": JSONValue(net.config.mtu), "tap": net.config.tap.map { JSONValue.string($0) } ?? .null,
                            "max_ports": JSONValue(net.config.maxPorts)]
                })
            },
        ]
    }

    static let exportParameters = [
        "name (string, required): 1-23 of A-Z a-z 0-9 . _ : -",
        "file | device (string: a path) | memory (true): exactly one",
        "size (bytes or \"64M\"): needed for memory and for a file that does not exist yet",
        "block_size (512 or 4096), read_only (bool), queue_depth, max_io, max_segments, inline_max, max_queues, max_queues_per_host",
        "allowed_hosts (array of configured host names), allow_any_host (bool)",
    ]

    /// An optional `name` parameter.
    static func optionalName(_ params: JSONValue?) throws(ControlError) -> String? {
        let r = JSONParamsReader(params)
        let name = r.string("name")
        let problems = r.finish()
        guard problems.isEmpty else { throw .invalidParams(problems) }
        return name
    }

    /// The configuration the daemon runs now: its startup configuration with the exports
    /// it serves now, in the order they were added (control thread).
    var runningConfig: TargetConfig {
        var c = config
        c.exports = exportOrder.compactMap { exports[$0]?.config }
        return c
    }

    /// One export as `export_list` shows it (control thread).
    func exportInfo(_ e: Export, state: String) -> JSONValue {
        let c = e.config
        var o: [String: JSONValue] = [
            "name": .string(c.name), "capacity": JSONValue(e.store.capacity), "block_size": JSONValue(Int(c.blockSize)),
            "read_only": .bool(c.readOnly), "queue_depth": JSONValue(c.queueDepth), "max_io": JSONValue(c.maxIO),
            "max_segments": JSONValue(c.maxSegments), "inline_max": JSONValue(c.inlineMax), "max_queues": JSONValue(c.maxQueues),
            "queues": JSONValue(e.queues), "hosts": JSONValue(e.queuesByHost.count), "state": .string(state),
        ]
        switch c.backing {
        case .file(let p): o["file"] = .string(p)
        case .device(let p): o["device"] = .string(p)
        case .memory: o["memory"] = true
        }
        if let n = c.maxQueuesPerHost { o["max_queues_per_host"] = JSONValue(n) }
        if let h = c.access.allowedHosts { o["allowed_hosts"] = JSONValue(h) }
        if let any = c.access.allowAnyHost { o["allow_any_host"] = .bool(any) }
        return .object(o)
    }

    func exportList(name: String?) -> Result<JSONValue, ControlError> {
        var out: [JSONValue] = []
        for n in exportOrder where name == nil || name == n {
            if let e = exports[n] { out.append(exportInfo(e, state: "serving")) }
        }
        for (n, e) in deleting.sorted(by: { $0.key < $1.key }) where name == nil || name == n {
            out.append(exportInfo(e, state: "draining"))
        }
        if let name, out.isEmpty { return .failure(.notFound("no export named '\(name)'; export_list shows them all")) }
        return .success(.array(out))
    }

    /// `export_create` on the control thread: read as a TOML table is, checked as the file is,
    /// opened, then served (new connections see it at once).
    func createExport(_ params: JSONValue?) -> Result<JSONValue, ControlError> {
        let r = JSONParamsReader(params)
        let parsed = ExportConfig(reading: r)
        var problems = r.finish()
        guard let ec = parsed else { return .failure(.invalidParams(problems)) }
        problems += ec.problems()
        let hostNames = Set(config.hosts.map(\.name))
        for h in ec.access.allowedHosts ?? [] where !hostNames.contains(h) {
            problems.append("allowed host '\(h)' is not a configured [[host]]")
        }
        guard problems.isEmpty else { return .failure(.invalidParams(problems)) }
        if exports[ec.name] != nil { return .failure(.exists("export \(ec.name) exists; export_delete it first, or pick another name")) }
        if networks[ec.name] != nil { return .failure(.exists("'\(ec.name)' is a network; endpoint names are shared by exports and networks")) }
        if let d = deleting[ec.name] {
            return .failure(.busy("export \(ec.name) is being deleted: \(d.queues) connection(s) still draining; try again shortly"))
        }
        let export: Export
        do { export = try Export(config: ec, logger: logger) } catch {
            return .failure(.failed("export \(ec.name): \(error)"))
        }
        access[ec.name] = Self.endpointRule(kind: "export", name: ec.name, ec.access, config: config, logger: logger)
        exports[ec.name] = export
        exportOrder.append(ec.name)
        logger.notice("export \(ec.name) created (control API): \(Self.describe(export))")
        return .success(exportInfo(export, state: "serving"))
    }

    /// `export_delete` on the control thread.
    func deleteExport(_ name: String, force: Bool) -> Result<JSONValue, ControlError> {
        guard let export = exports[name] else {
            if let d = deleting[name] {
                return .failure(.busy("export \(name) is already being deleted: \(d.queues) connection(s) still draining"))
            }
            return .failure(.notFound("no export named '\(name)'; export_list shows them all"))
        }
        let queues = export.queues
        if queues > 0 && !force {
            return .failure(.busy("export \(name) serves \(queues) queue(s) of \(export.queuesByHost.count) host(s); disconnect them first (detach the disks), or pass force: true to drop them (their guests' I/O fails)"))
        }
        exports[name] = nil
        access[name] = nil
        exportOrder.removeAll { $0 == name }
        if queues > 0 {
            deleting[name] = export
            dropConnections(of: export)
            logger.notice("export \(name) deleted (control API, forced): dropping its \(queues) queue(s)")
        } else {
            logger.notice("export \(name) deleted (control API)")
        }
        return .success(["name": .string(name), "dropped_queues": JSONValue(queues), "state": .string(queues > 0 ? "draining" : "deleted")])
    }
}
