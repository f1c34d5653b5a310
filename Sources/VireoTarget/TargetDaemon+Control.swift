import Logging
import VireoAuth
import VireoBlockTarget
import VireoRBD
import VireoSys
import VireoDaemon
import VireoPacketTarget
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
                let name = try JSONParamsReader.optionalString("name", in: params)
                return try mailbox.run { [self] in exportList(name: name) }
            },
            ControlMethod("export_create", "Adds an export and starts serving it; the keys are the TOML [[export]] table's.",
                          parameters: Self.exportParameters) { [self] params throws(ControlError) in
                try mailbox.run { [self] in createExport(params) }
            },
            ControlMethod("export_delete", "Removes an export. Refused while a host is connected to it, unless force: then its connections are dropped (their guests' I/O fails) and the name stays taken until they are gone.",
                          parameters: ["name (string, required)", "force (bool, default false): drop the export's connections"]) { [self] params throws(ControlError) in
                let (name, force) = try JSONParamsReader.deletion("name", example: "vol0", in: params)
                return try mailbox.run { [self] in deleteExport(name, force: force) }
            },
            ControlMethod("export_resize", "Grows a file export online: the file is extended, the export's connections are dropped and remade (the initiators hold and resubmit their requests), and each initiator passes the new capacity to its guest (virtio CONFIG_CHANGE). No guest I/O fails.",
                          parameters: ["name (string, required)", "size (bytes or \"128M\", required): the new capacity, larger than the current one"]) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let name = r.requiredString("name", example: "vol0")
                let size = r.byteCount("size")
                if size == nil && !r.has("size") { r.problem("size is missing (e.g. \"size\": \"128M\")") }
                let problems = r.finish()
                guard problems.isEmpty, let name, let size else { throw .invalidParams(problems) }
                return try mailbox.run { [self] in resizeExport(name, to: UInt64(size)) }
            },
            ControlMethod("host_list", "Every host the target knows: its name, how many key files prove it, and the exports, networks and ports that allow it by name.",
                          parameters: ["name (string, optional): only this host"]) { [self] params throws(ControlError) in
                let name = try JSONParamsReader.optionalString("name", in: params)
                return try mailbox.run { [self] in hostList(name: name) }
            },
            ControlMethod("host_add", "Adds a host the target knows ([[host]]): new connections naming it must prove it holds one of its keys (none: known by name only, no proof). Exports and networks without allowed_hosts or allow_any_host admit no host once any host is known.",
                          parameters: ["name (string, required): as its initiator's host_name", "key_file (path) or key_files (array of paths, two while its key is rotated): the target's copies of its secret"]) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let parsed = HostConfig(reading: r)
                var problems = r.finish()
                if let parsed { problems += parsed.problems() }
                guard problems.isEmpty, let h = parsed else { throw .invalidParams(problems) }
                return try mailbox.run { [self] in addHost(h) }
            },
            ControlMethod("host_remove", "Removes a known host: new connections naming it are refused (its connections now go on; drop them with export_delete force or by detaching its disks). Refused while an export, network or port lists it in allowed_hosts or hosts.",
                          parameters: ["name (string, required)"]) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let name = r.requiredString("name", example: "compute-1")
                let problems = r.finish()
                guard problems.isEmpty, let name else { throw .invalidParams(problems) }
                return try mailbox.run { [self] in removeHost(name) }
            },
            ControlMethod("network_list", "Every network (packet endpoint): its configuration and connected ports.",
                          parameters: ["name (string, optional): only this network"]) { [self] params throws(ControlError) in
                let name = try JSONParamsReader.optionalString("name", in: params)
                return try mailbox.run { [self] in networkList(name: name) }
            },
            ControlMethod("network_create", "Adds a network (an L2 switch, optionally with a TAP uplink) and serves it at once; the keys are the TOML [[network]] table's (named ports only from the file).",
                          parameters: ["name (string, required)", "mtu, aging, receive_buffers, max_ports, mac_table_size (integers)", "tap (string): the uplink's interface name",
                                       "allowed_macs, allowed_hosts (arrays of strings), allow_any_host (bool)"]) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let parsed = NetworkConfig(reading: r)
                let problems = r.finish()
                guard problems.isEmpty, let n = parsed else { throw .invalidParams(problems) }
                return try mailbox.run { [self] in createNetwork(n, how: "control API") }
            },
            ControlMethod("network_delete", "Removes a network. Refused while ports are connected, unless force: then they are dropped (their guests see the link go down).",
                          parameters: ["name (string, required)", "force (bool, default false)"]) { [self] params throws(ControlError) in
                let (name, force) = try JSONParamsReader.deletion("name", example: "lan0", in: params)
                return try mailbox.run { [self] in deleteNetwork(name, force: force) }
            },
            ControlMethod("port_list", "Every connected port of every network (or one network): its peer, queue pair and frame counters.",
                          parameters: ["network (string, optional)"]) { [self] params throws(ControlError) in
                let network = try JSONParamsReader.optionalString("network", in: params)
                let ports = shared.withLock { Array($0.ports.values) }
                    .filter { network == nil || $0.network == network }
                    .sorted { ($0.network, $0.port.peer, $0.port.queueIndex) < ($1.network, $1.port.peer, $1.port.queueIndex) }
                return .array(ports.map { (n, p) -> JSONValue in
                    let c = p.counters
                    var o: [String: JSONValue] = [
                        "network": .string(n), "peer": .string(p.peer), "queue_pair": JSONValue(Int(p.queueIndex)),
                        "rx_frames": JSONValue(c.rxFrames), "rx_bytes": JSONValue(c.rxBytes),
                        "tx_frames": JSONValue(c.txFrames), "tx_bytes": JSONValue(c.txBytes),
                    ]
                    if case .named(let name)? = p.portKey { o["port"] = .string(name) }
                    return .object(o)
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

    /// The configuration the daemon runs now: its startup configuration with the exports
    /// it serves now, in the order they were added (control thread).
    var runningConfig: TargetConfig {
        var c = config
        c.hosts = hosts
        c.exports = exportOrder.compactMap { exports[$0]?.config ?? resized[$0]?.config }
        c.networks = networkOrder.compactMap { networks[$0]?.config }
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
        case .rbd(let spec):
            o["rbd"] = .string(spec.description)
            if let cluster = c.cephCluster { o["ceph_cluster"] = .string(cluster) }
            if let group = c.group { o["group"] = .string(group) }
            o["io_timeout"] = JSONValue(Int(c.ioTimeoutSeconds.rounded(.up)))
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
            out.append(exportInfo(e, state: resized[n] != nil ? "resizing" : "draining"))
        }
        if let name, out.isEmpty { return .failure(.notFound("no export named '\(name)'; export_list shows them all")) }
        return .success(.array(out))
    }

    /// `export_create` on the control thread: read as a TOML table is, checked as the file is,
    /// opened, then served (new connections see it at once).
    func createExport(_ params: JSONValue?) -> Result<JSONValue, ControlError> {
        let r = JSONParamsReader(params)
        let parsed = ExportConfig(reading: r)
        let problems = r.finish()
        guard let ec = parsed else { return .failure(.invalidParams(problems)) }
        guard problems.isEmpty else { return .failure(.invalidParams(problems)) }
        return createExport(ec, how: "control API")
    }

    /// Adds `ec` (checked as the file's tables are) and serves it (control thread).
    func createExport(_ ec: ExportConfig, how: String) -> Result<JSONValue, ControlError> {
        var problems = ec.problems()
        let hostNames = Set(hosts.map(\.name))
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
        do { export = try Export(config: ec, ceph: ceph, logger: logger) } catch {
            return .failure(.failed("export \(ec.name): \(error)"))
        }
        access[ec.name] = Self.endpointRule(kind: "export", name: ec.name, ec.access, config: runningConfig, logger: logger)
        exports[ec.name] = export
        exportOrder.append(ec.name)
        watchImage(export)
        logger.notice("export \(ec.name) created (\(how)): \(Self.describe(export))")
        return .success(exportInfo(export, state: "serving"))
    }

    /// `export_resize` on the control thread: a new `Export` over the grown file; with no
    /// connection it is served at once, else the old export's connections are dropped and
    /// the new one is served when the last is gone (the name admits no connection in
    /// between, so no I/O of the old connections overlaps one of the new).
    func resizeExport(_ name: String, to size: UInt64) -> Result<JSONValue, ControlError> {
        guard let old = exports[name] else {
            if resized[name] != nil { return .failure(.busy("export \(name) is being resized already; try again once export_list shows it serving")) }
            if deleting[name] != nil { return .failure(.busy("export \(name) is being deleted")) }
            return .failure(.notFound("no export named '\(name)'; export_list shows them all"))
        }
        let capacity = old.store.capacity, block = UInt64(old.config.blockSize)
        guard case .file = old.config.backing else {
            let kind: String
            switch old.config.backing {
            case .memory: kind = "memory"
            case .rbd: kind = "an RBD image (resize the image: `rbd resize`; the export follows it)"
            default: kind = "a block device"
            }
            return .failure(.failed("export \(name) is backed by \(kind): only file exports grow online"))
        }
        if old.config.readOnly { return .failure(.failed("export \(name) is read-only: its file is never written, so it is not grown")) }
        guard size / block * block > capacity else {
            return .failure(.invalidParams(["size \(size) must be above the export's capacity \(capacity) by at least one block (\(block) bytes); exports only grow (shrinking would cut off what guests wrote)"]))
        }
        var c = old.config
        c.size = size
        let grown: Export
        do { grown = try Export(config: c, counters: old.counters, ceph: ceph, logger: logger) } catch {
            return .failure(.failed("export \(name): growing its file to \(size) bytes: \(error)"))
        }
        let queues = old.queues
        serveReplacement(grown, replacing: old, what: "resized (control API): \(capacity) -> \(grown.store.capacity) bytes")
        return .success(["name": .string(name), "old_capacity": JSONValue(capacity), "capacity": JSONValue(grown.store.capacity),
                         "reconnecting_queues": JSONValue(queues), "state": .string(queues > 0 ? "resizing" : "serving")])
    }

    /// Serves `replacement` (the same export reopened: at a larger capacity, or on a new
    /// cluster client) in place of `old`: at once when nothing is connected, else once `old`'s
    /// connections, dropped now, are gone (the name admits none in between, so no I/O of the
    /// old ones overlaps the new). `what` completes the log line ("resized ...").
    func serveReplacement(_ replacement: Export, replacing old: Export, what: String) {
        let name = old.config.name, queues = old.queues
        if queues == 0 {
            exports[name] = replacement
            logger.notice("export \(name) \(what)")
        } else {
            exports[name] = nil
            deleting[name] = old
            resized[name] = replacement
            dropConnections(of: old)
            logger.notice("export \(name) \(what); dropping its \(queues) queue(s) so the initiators reconnect to it")
        }
        watchImage(replacement)
    }

    /// Control thread, each pass: an RBD export whose cluster client was fenced (an operation
    /// failed with EBLOCKLISTED: `RadosConnection.isFenced`) is reopened on a new connection
    /// (a new client instance, which the blocklist does not name) and served at once in place
    /// of the old one, whose connections are cut: their initiators reconnect to the new one and
    /// resubmit what was held or in flight. Unlike a resize this need not wait for the old
    /// connections' operations: the cluster refuses every one of the fenced client's, and
    /// librbd may hold some (writes waiting for the lock it lost) for ever; each old connection
    /// is released once its own are done. Tried again after 2 s, doubling to 60 s, until the
    /// image opens (each try blocks this thread for up to the export's io_timeout when the
    /// cluster does not answer).
    func reopenFencedImages() {
        let now = monotonicNanoseconds()
        for name in exportOrder {
            guard let e = exports[name], let image = e.store.image, image.connection.isFenced else {
                reopenAttempts[name] = nil
                continue
            }
            let attempt = reopenAttempts[name] ?? (next: now, wait: 2_000_000_000)
            if now < attempt.next { continue }
            let fresh: Export
            do { fresh = try Export(config: e.config, counters: e.counters, ceph: ceph, logger: logger) } catch {
                logger.error("export \(name): reopening rbd \(image.name) after client.\(image.connection.instanceID) was blocklisted: \(error); trying again in \(attempt.wait / 1_000_000_000) s")
                reopenAttempts[name] = (next: monotonicNanoseconds() &+ attempt.wait, wait: min(attempt.wait * 2, 60_000_000_000))
                continue
            }
            reopenAttempts[name] = nil
            let client = fresh.store.image.map { String($0.connection.instanceID) } ?? "?"
            exports[name] = fresh
            watchImage(fresh)
            let cut = dropConnections(of: e, cut: true)
            logger.notice("export \(name) reopened rbd \(image.name) on client.\(client) (client.\(image.connection.instanceID) was blocklisted); its \(cut.count) connection(s) cut, their initiators reconnect to it")
            if cut.count > 0 {
                logger.warning("export \(name): the \(cut.count) cut connection(s) of fenced client.\(image.connection.instanceID) are released when librbd ends their operations, which it never does for writes that waited for the lock it lost: their \(cut.bytes) bytes of registered buffers stay until this target restarts")
            }
        }
    }

    /// Asks librbd to wake the control thread when an RBD export's image header changes.
    func watchImage(_ export: Export) {
        guard let image = export.store.image else { return }
        do { try image.watchUpdates(eventFD: controlWake.rawValue) } catch {
            logger.warning("export \(export.config.name): \(error); an rbd resize will reach its initiators only after a target restart")
        }
    }

    /// Control thread, when woken: each RBD export whose image header changed is checked for a
    /// new size. A grown image is served grown (as `export_resize` does a file); a shrunk one
    /// keeps its served capacity, and I/O beyond the image's end fails, logged.
    func followImages() {
        for name in exportOrder {
            guard let e = exports[name], let image = e.store.image, image.takeUpdated() else { continue }
            let size: UInt64
            do { size = try image.size() } catch {
                if error.errno == RadosConnection.blocklistedErrno {
                    // The watch broke because the cluster fenced this client: writes waiting for
                    // the lock it lost would never end, and may be all that is in flight.
                    image.connection.markFenced()
                    logger.error("export \(name): the cluster blocklisted this gateway's client.\(image.connection.instanceID) (\(error)); the image is reopened on a new client")
                } else {
                    logger.warning("export \(name): \(error)")
                }
                continue
            }
            let block = UInt64(e.config.blockSize)
            if size / block * block > e.store.capacity {
                logger.notice("export \(name): rbd image grew to \(size) bytes")
                let grown: Export
                do { grown = try Export(config: e.config, counters: e.counters, ceph: ceph, logger: logger) } catch {
                    logger.error("export \(name): reopening the grown image: \(error); still serving \(e.store.capacity) bytes")
                    continue
                }
                serveReplacement(grown, replacing: e, what: "resized (rbd image resized): \(e.store.capacity) -> \(grown.store.capacity) bytes")
            } else if size < e.store.capacity {
                logger.warning("export \(name): rbd image shrank to \(size) bytes below the served \(e.store.capacity); I/O past its end fails until the export is recreated")
            }
        }
    }

    /// Where `name` is allowed by name: "export vol0", "network lan0", "port lan0/vm1".
    func listings(of name: String) -> [String] {
        let c = runningConfig
        var out: [String] = []
        for e in c.exports where e.access.allowedHosts?.contains(name) == true { out.append("export \(e.name)") }
        for n in c.networks {
            if n.access.allowedHosts?.contains(name) == true { out.append("network \(n.name)") }
            for p in n.ports where p.hosts?.contains(name) == true { out.append("port \(n.name)/\(p.name)") }
        }
        return out
    }

    func hostList(name: String?) -> Result<JSONValue, ControlError> {
        let out = hosts.filter { name == nil || $0.name == name }.map { h -> JSONValue in
            ["name": .string(h.name), "key_files": JSONValue(h.keyFiles), "authenticated": .bool(!h.keyFiles.isEmpty),
             "allowed_on": JSONValue(listings(of: h.name))]
        }
        if let name, out.isEmpty { return .failure(.notFound("no host named '\(name)'; host_list shows them all")) }
        return .success(.array(out))
    }

    /// `host_add` on the control thread: its keys read now (a bad file changes nothing), then
    /// the policy new connections use, and every endpoint's rule as a restart would make it.
    func addHost(_ h: HostConfig) -> Result<JSONValue, ControlError> {
        if hosts.contains(where: { $0.name == h.name }) {
            return .failure(.exists("host \(h.name) is known already; host_remove it first to change its keys, or replace its key file in place (read at each connection)"))
        }
        var keys: [HandshakeKey] = []
        for f in h.keyFiles {
            do { keys.append(try HandshakeKey(file: f, for: "host '\(h.name)'")) } catch {
                return .failure(.failed("\(error)"))
            }
        }
        hosts.append(h)
        var known = policy.hosts
        known[h.name] = keys
        policy = AccessPolicy(targetName: policy.targetName, targetKey: policy.targetKey, hosts: known)
        refreshAccessRules()
        logger.notice("host \(h.name) added (control API)\(keys.isEmpty ? ": no key file, known by name only (no proof checked)" : ", \(keys.count) key(s)")")
        return .success(["name": .string(h.name), "key_files": JSONValue(h.keyFiles), "authenticated": .bool(!keys.isEmpty),
                         "allowed_on": JSONValue(listings(of: h.name))])
    }

    /// `host_remove` on the control thread.
    func removeHost(_ name: String) -> Result<JSONValue, ControlError> {
        guard hosts.contains(where: { $0.name == name }) else {
            return .failure(.notFound("no host named '\(name)'; host_list shows them all"))
        }
        let listed = listings(of: name)
        if !listed.isEmpty {
            return .failure(.busy("host \(name) is allowed by \(listed.joined(separator: ", ")): remove it there first (export_delete and export_create it without the host)"))
        }
        hosts.removeAll { $0.name == name }
        var known = policy.hosts
        known[name] = nil
        policy = AccessPolicy(targetName: policy.targetName, targetKey: policy.targetKey, hosts: known)
        refreshAccessRules()
        logger.notice("host \(name) removed (control API): new connections naming it are refused")
        return .success(["name": .string(name), "state": "removed"])
    }

    /// Every endpoint's rule again, from the running configuration (the known hosts changed:
    /// an endpoint with no rule of its own is open only while no host is known).
    func refreshAccessRules() {
        let c = runningConfig
        for e in c.exports { access[e.name] = Self.endpointRule(kind: "export", name: e.name, e.access, config: c, logger: logger) }
        for n in c.networks { access[n.name] = Self.endpointRule(kind: "network", name: n.name, n.access, config: c, logger: logger) }
    }

    /// One network as `network_list` shows it.
    func networkInfo(_ net: PacketNetwork) -> JSONValue {
        let c = net.config
        var o: [String: JSONValue] = ["name": .string(c.name), "mtu": JSONValue(c.mtu), "max_ports": JSONValue(c.maxPorts),
                                      "ports": JSONValue(net.portCount), "named_ports": JSONValue(c.ports.map(\.name))]
        if let t = c.tap { o["tap"] = .string(t) }
        if let h = c.access.allowedHosts { o["allowed_hosts"] = JSONValue(h) }
        if let any = c.access.allowAnyHost { o["allow_any_host"] = .bool(any) }
        return .object(o)
    }

    func networkList(name: String?) -> Result<JSONValue, ControlError> {
        let out = networkOrder.filter { name == nil || $0 == name }.compactMap { networks[$0].map(networkInfo) }
        if let name, out.isEmpty { return .failure(.notFound("no network named '\(name)'; network_list shows them all")) }
        return .success(.array(out))
    }

    /// `network_create` on the control thread: checked as the file's tables are, its TAP
    /// uplink opened, its worker started when the target's RDMA device is known.
    func createNetwork(_ n: NetworkConfig, how: String) -> Result<JSONValue, ControlError> {
        var problems = n.problems()
        let hostNames = Set(hosts.map(\.name))
        for h in n.access.allowedHosts ?? [] where !hostNames.contains(h) {
            problems.append("allowed host '\(h)' is not a configured [[host]]")
        }
        guard problems.isEmpty else { return .failure(.invalidParams(problems)) }
        if networks[n.name] != nil { return .failure(.exists("network \(n.name) exists; network_delete it first, or pick another name")) }
        if exports[n.name] != nil || deleting[n.name] != nil {
            return .failure(.exists("'\(n.name)' is an export; endpoint names are shared by exports and networks"))
        }
        let net: PacketNetwork
        do {
            net = try PacketNetwork(config: n, busyPoll: config.busyPoll, keepaliveNanoseconds: UInt64(config.keepaliveSeconds * 1e9),
                                    peerTimeoutNanoseconds: UInt64(config.peerTimeoutSeconds * 1e9), logger: logger,
                                    retire: { [weak self] p in self?.retirePort(p) })
            if let ctx = context, let info = deviceInfo { try net.start(context: ctx, maxCQE: info.maxCQE) }
        } catch {
            return .failure(.failed("network \(n.name): \(error)"))
        }
        access[n.name] = Self.endpointRule(kind: "network", name: n.name, n.access, config: runningConfig, logger: logger)
        networks[n.name] = net
        networkOrder.append(n.name)
        logger.notice("network \(n.name) created (\(how))")
        return .success(networkInfo(net))
    }

    /// `network_delete` on the control thread: with `force`, its worker stops and every port
    /// it held is released (their initiators see the connection go; their guests' links go down).
    func deleteNetwork(_ name: String, force: Bool) -> Result<JSONValue, ControlError> {
        guard let net = networks[name] else { return .failure(.notFound("no network named '\(name)'; network_list shows them all")) }
        let ports = net.portCount
        if ports > 0 && !force {
            return .failure(.busy("network \(name) has \(ports) connected port(s); detach their NICs first, or pass force: true to drop them (their guests' links go down)"))
        }
        networks[name] = nil
        access[name] = nil
        networkOrder.removeAll { $0 == name }
        for p in net.stop() { release(p) }
        logger.notice("network \(name) deleted (\(force && ports > 0 ? "forced: dropped \(ports) port(s)" : "no port connected"))")
        return .success(["name": .string(name), "dropped_ports": JSONValue(ports), "state": "deleted"])
    }

    /// `export_delete` on the control thread.
    func deleteExport(_ name: String, force: Bool) -> Result<JSONValue, ControlError> {
        guard let export = exports[name] else {
            if resized[name] != nil { return .failure(.busy("export \(name) is being resized; try again once export_list shows it serving")) }
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
