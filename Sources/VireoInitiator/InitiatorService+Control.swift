import VireoDaemon
import VireoWire

extension InitiatorService {
    /// The initiator's control API (docs/api.md). Methods run on the control server's
    /// thread, one at a time; a change touches only the device it names: other disks' and
    /// NICs' I/O goes on (each has its own connections, workers and socket).
    public func controlMethods() -> [ControlMethod] {
        [
            ControlMethod("version_get", "The daemon's name, version and wire protocol version.") { _ throws(ControlError) in
                ["daemon": "vireo-initiator", "version": .string(VireoVersion.current), "wire_protocol": .int(Int64(Wire.version))]
            },
            ControlMethod("config_get", "The running configuration as TOML: the startup settings with the disks and NICs served now; an initiator started from it serves the same devices.") { [self] _ throws(ControlError) in
                ["toml": .string(runningConfig.tomlText)]
            },
            ControlMethod("stats_get", "Every counter, as the stats file has them: name, labels, value.") { [self] _ throws(ControlError) in
                ["metrics": statsSnapshot().json]
            },
            ControlMethod("disk_list", "Every disk: its configuration, what the target granted, whether a VMM is attached, its state (serving, or detached after a forced delete) and request counts.",
                          parameters: ["socket (string, optional): only the disk on this socket"]) { [self] params throws(ControlError) in
                let socket = try JSONParamsReader.optionalString("socket", in: params)
                reapDetached()
                let out = disks.filter { socket == nil || $0.device.config.socket == socket }.map(Self.diskInfo)
                if let socket, out.isEmpty { throw .notFound("no disk on socket \(socket); disk_list shows them all") }
                return .array(out)
            },
            ControlMethod("disk_create", "Connects a disk to its target export and serves its vhost-user socket (then QMP chardev-add + device_add vhost-user-blk-pci attaches it to a running VM); the keys are the TOML [[disk]] table's.",
                          parameters: Self.diskParameters) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let parsed = DiskConfig(reading: r)
                let problems = r.finish()
                guard problems.isEmpty, let config = parsed else { throw .invalidParams(problems) }
                reapDetached()
                if let user = user(ofSocket: config.socket) {
                    throw .exists("socket \(config.socket) is served by \(user); disk_delete or nic_delete it first, or pick another path")
                }
                do throws(InitiatorError) { return Self.diskInfo(try addDisk(config)) } catch { throw Self.controlError(error) }
            },
            ControlMethod("disk_delete", "Stops serving a disk. Refused while a VMM is attached (QMP device_del first), unless force: then every request fails with IOERR (the guest sees its disk fail, never hang) and the disk goes once the VMM lets go of the socket.",
                          parameters: ["socket (string, required)", "force (bool, default false): detach it from an attached VMM"]) { [self] params throws(ControlError) in
                let (socket, force) = try JSONParamsReader.deletion("socket", example: "/run/vireo/vm1-disk0.sock", in: params)
                return try Self.removal(removeDisk(socket: socket, force: force), socket: socket, what: "disk")
            },
            ControlMethod("nic_list", "Every NIC: its configuration, the network's MTU, link state, whether a VMM is attached and its state.",
                          parameters: ["socket (string, optional): only the NIC on this socket"]) { [self] params throws(ControlError) in
                let socket = try JSONParamsReader.optionalString("socket", in: params)
                reapDetached()
                let out = nics.filter { socket == nil || $0.device.config.socket == socket }.map(Self.nicInfo)
                if let socket, out.isEmpty { throw .notFound("no nic on socket \(socket); nic_list shows them all") }
                return .array(out)
            },
            ControlMethod("nic_create", "Connects a NIC to its target network and serves its vhost-user socket (then QMP chardev-add, netdev_add vhost-user and device_add virtio-net-pci attach it); the keys are the TOML [[nic]] table's.",
                          parameters: Self.nicParameters) { [self] params throws(ControlError) in
                let r = JSONParamsReader(params)
                let parsed = NicConfig(reading: r)
                let problems = r.finish()
                guard problems.isEmpty, let config = parsed else { throw .invalidParams(problems) }
                reapDetached()
                if let user = user(ofSocket: config.socket) {
                    throw .exists("socket \(config.socket) is served by \(user); disk_delete or nic_delete it first, or pick another path")
                }
                do throws(InitiatorError) { return Self.nicInfo(try addNic(config)) } catch { throw Self.controlError(error) }
            },
            ControlMethod("nic_delete", "Stops serving a NIC. Refused while a VMM is attached (QMP device_del first), unless force: then its link goes down, and the NIC goes once the VMM lets go of the socket.",
                          parameters: ["socket (string, required)", "force (bool, default false): detach it from an attached VMM"]) { [self] params throws(ControlError) in
                let (socket, force) = try JSONParamsReader.deletion("socket", example: "/run/vireo/vm1-disk0.sock", in: params)
                return try Self.removal(removeNic(socket: socket, force: force), socket: socket, what: "nic")
            },
        ]
    }

    static let diskParameters = [
        "socket (string, required): the vhost-user socket path to serve",
        "target (string, required): the target's \"host:port\" (a disk: several, comma-separated, its paths through a gateway group)",
        "export (string, required): the export's name on the target",
        "queues (1-64), queue_depth (power of two 2-1024), read_only (bool), loss_timeout (\"120s\")",
        "remote_access (\"windows\" or \"whole-memory\"), target_key_file or target_key_files, target_name",
    ]

    static let nicParameters = [
        "socket (string, required): the vhost-user socket path to serve",
        "target (string, required): the target's \"host:port\" (a disk: several, comma-separated, its paths through a gateway group)",
        "network (string, required): the network's name on the target",
        "mac (string, required): e.g. \"52:54:00:00:00:01\" (the VMM's -device mac must match)",
        "queue_pairs (1-32), queue_size (power of two 16-1024), port (a named port of the network)",
        "target_key_file or target_key_files, target_name",
    ]

    static func removal(_ r: Removal, socket: String, what: String) throws(ControlError) -> JSONValue {
        switch r {
        case .removed: return ["socket": .string(socket), "state": "deleted"]
        case .detached: return ["socket": .string(socket), "state": "detached"]
        case .notFound: throw .notFound("no \(what) on socket \(socket); \(what)_list shows them all")
        case .refusedAttached:
            throw .busy("a VMM is attached to \(what) \(socket): detach it first (QMP device_del, then \(what == "nic" ? "netdev_del" : "chardev-remove")), or pass force: true to fail its I/O now")
        }
    }

    /// An error adding a device, as the API answers it.
    static func controlError(_ e: InitiatorError) -> ControlError {
        switch e {
        case .config(let c): return .invalidParams(c.problems)
        default: return .failed("\(e)")
        }
    }

    static func state(_ detached: Bool) -> JSONValue { detached ? "detached" : "serving" }

    static func diskInfo(_ s: Served<RemoteBlockDevice>) -> JSONValue {
        let c = s.device.config, g = s.device.geometry, k = s.device.counters
        var o: [String: JSONValue] = [
            "id": .string(s.id), "socket": .string(c.socket), "target": .string(c.targetText),
            "export": .string(c.export), "queues": JSONValue(c.queues), "queue_depth": JSONValue(c.queueDepth),
            "read_only": .bool(c.readOnly || g.flags.contains(.readOnly)), "capacity": JSONValue(g.capacityBytes),
            "block_size": JSONValue(Int(g.blockSize)), "remote_access": .string(c.remoteAccess.rawValue),
            "loss_timeout_ms": JSONValue(c.lossTimeoutNanoseconds / 1_000_000),
            "vmm_attached": .bool(s.vmmAttached), "state": state(s.detached),
            "requests": JSONValue(k.requests.load(ordering: .relaxed)), "io_errors": JSONValue(k.ioErrors.load(ordering: .relaxed)),
        ]
        if let n = c.targetTrust.name { o["target_name"] = .string(n) }
        if let paths = s.device.paths, paths.addresses.count > 1 {
            o["paths"] = .array(paths.snapshot().map { p in
                var e: [String: JSONValue] = ["address": .string(p.address.description), "state": .string(p.state.rawValue)]
                if let err = p.lastError { e["last_error"] = .string(err) }
                return .object(e)
            })
        }
        return .object(o)
    }

    static func nicInfo(_ s: Served<RemoteNetDevice>) -> JSONValue {
        let c = s.device.config
        var o: [String: JSONValue] = [
            "id": .string(s.id), "socket": .string(c.socket), "target": .string(c.target.description),
            "network": .string(c.network), "mac": .string(c.mac.description), "queue_pairs": JSONValue(c.queuePairs),
            "queue_size": JSONValue(c.queueSize), "mtu": JSONValue(Int(s.device.mtu)), "link_up": .bool(s.device.isLinkUp && !s.detached),
            "vmm_attached": .bool(s.vmmAttached), "state": state(s.detached),
        ]
        if let p = c.port { o["port"] = .string(p) }
        if let n = c.targetTrust.name { o["target_name"] = .string(n) }
        return .object(o)
    }
}
