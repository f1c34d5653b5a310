// vireoctl: one command line over the Vireo daemons' control APIs (JSON-RPC 2.0 on a
// UNIX socket, docs/api.md). Human tables by default, --json for scripts.
import ArgumentParser
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

@main
struct VireoCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireoctl",
        abstract: "Manage running Vireo daemons: exports on a target, disks and NICs on an initiator.",
        version: VireoVersion.current,
        subcommands: [Target.self, Initiator.self, Rpc.self])
}

/// Which daemon a command talks to, and where its control socket is by default.
protocol Daemon {
    static var name: String { get }
    static var defaultSocket: String { get }
}

enum TargetDaemon: Daemon {
    static var name: String { "target" }
    static var defaultSocket: String { "/run/vireo/target.sock" }
}

enum InitiatorDaemon: Daemon {
    static var name: String { "initiator" }
    static var defaultSocket: String { "/run/vireo/initiator.sock" }
}

/// Where to reach the daemon and how to print.
struct Connection: ParsableArguments {
    @Option(help: "The daemon's control socket (default: /run/vireo/target.sock or /run/vireo/initiator.sock).")
    var controlSocket: String?

    @Flag(help: "Print the daemon's JSON result instead of a table.")
    var json = false

    /// Calls `method` on `D`'s socket; a daemon's error becomes the command's error (exit 1) with its message.
    func call<D: Daemon>(_ daemon: D.Type, _ method: String, _ params: JSONValue? = nil) throws -> JSONValue {
        do { return try ControlClient(path: controlSocket ?? D.defaultSocket).call(method, params) } catch {
            throw CtlError(message: "\(error)")
        }
    }

    func print(_ result: JSONValue, table: (JSONValue) -> String) {
        Swift.print(json ? result.pretty : table(result), terminator: json ? "\n" : "")
    }
}

struct CtlError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// Columns, left-aligned, two spaces apart.
func table(_ header: [String], _ rows: [[String]]) -> String {
    let all = [header] + rows
    let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
    return all.map { row in
        row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(widths[i]) }.joined(separator: "  ")
    }.joined(separator: "\n") + "\n"
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
}

/// A byte count for people: 64 MiB, 1.5 GiB.
func bytes(_ v: JSONValue?) -> String {
    guard let n = v?.int else { return "-" }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var x = Double(n), u = 0
    while x >= 1024 && u < units.count - 1 { x /= 1024; u += 1 }
    return x == x.rounded() ? "\(Int(x)) \(units[u])" : "\((x * 10).rounded() / 10) \(units[u])"
}

func text(_ v: JSONValue?) -> String {
    switch v {
    case .string(let s)?: return s
    case .int(let i)?: return String(i)
    case .double(let d)?: return String(d)
    case .bool(let b)?: return b ? "yes" : "no"
    default: return "-"
    }
}

/// Commands both daemons answer alike.
struct Version<D: Daemon>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "version", abstract: "The daemon's version and wire protocol.")
    }
    @OptionGroup var connection: Connection
    func run() throws {
        let r = try connection.call(D.self, "version_get")
        connection.print(r) { "\(text($0["daemon"])) \(text($0["version"])) (wire protocol \(text($0["wire_protocol"])))\n" }
    }
}

struct Config<D: Daemon>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "config",
                             abstract: "The running configuration as TOML (start a daemon from it to serve the same devices or endpoints).")
    }
    @OptionGroup var connection: Connection
    func run() throws {
        let r = try connection.call(D.self, "config_get")
        connection.print(r) { text($0["toml"]) }
    }
}

struct Stats<D: Daemon>: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(commandName: "stats", abstract: "Every counter (name, labels, value).")
    }
    @OptionGroup var connection: Connection
    @Option(help: "Only metrics whose name contains this.")
    var filter: String?
    func run() throws {
        let r = try connection.call(D.self, "stats_get")
        connection.print(r) { r in
            let rows = (r["metrics"]?.array ?? []).compactMap { m -> [String]? in
                let name = text(m["name"])
                if let filter, !name.contains(filter) { return nil }
                let labels = (m["labels"]?.object ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\(text($0.value))" }
                return [name, labels.joined(separator: ","), text(m["value"])]
            }
            return table(["METRIC", "LABELS", "VALUE"], rows)
        }
    }
}

struct Target: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A target daemon (vireo-target serve --control-socket PATH).",
        subcommands: [Export.self, Network.self, Port.self, Host.self, Config<TargetDaemon>.self, Stats<TargetDaemon>.self, Version<TargetDaemon>.self])

    struct Network: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, create and delete networks (L2 switches) while the target serves.",
            subcommands: [List.self, Create.self, Delete.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every network (or one), with its MTU, uplink and ports.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only this network.") var name: String?
            func run() throws {
                let r = try connection.call(TargetDaemon.self, "network_list", name.map { ["name": .string($0)] })
                connection.print(r) { r in
                    table(["NAME", "MTU", "TAP", "PORTS", "MAX PORTS"], (r.array ?? []).map {
                        [text($0["name"]), text($0["mtu"]), text($0["tap"]), text($0["ports"]), text($0["max_ports"])]
                    })
                }
            }
        }

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add a network and serve it at once (the keys of a TOML [[network]] table).")
            @OptionGroup var connection: Connection
            @Argument(help: "The network's name.") var name: String
            @Option(help: "MTU (default 1500).") var mtu: Int?
            @Option(help: "A TAP uplink to create with this interface name.") var tap: String?
            @Option(help: "Largest number of ports.") var maxPorts: Int?
            @Option(help: "A configured host allowed to connect (repeatable).") var allowedHost: [String] = []
            @Flag(help: "Allow any host that reaches the target.") var allowAnyHost = false
            func run() throws {
                var p: [String: JSONValue] = ["name": .string(name)]
                if let mtu { p["mtu"] = JSONValue(mtu) }
                if let tap { p["tap"] = .string(tap) }
                if let maxPorts { p["max_ports"] = JSONValue(maxPorts) }
                if !allowedHost.isEmpty { p["allowed_hosts"] = JSONValue(allowedHost) }
                if allowAnyHost { p["allow_any_host"] = true }
                let r = try connection.call(TargetDaemon.self, "network_create", .object(p))
                connection.print(r) { "network \(text($0["name"])) created: MTU \(text($0["mtu"]))\n" }
            }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a network. Refused while ports are connected unless --force.")
            @OptionGroup var connection: Connection
            @Argument(help: "The network's name.") var name: String
            @Flag(help: "Drop its connected ports.") var force = false
            func run() throws {
                var p: [String: JSONValue] = ["name": .string(name)]
                if force { p["force"] = true }
                let r = try connection.call(TargetDaemon.self, "network_delete", .object(p))
                connection.print(r) { "network \(name) deleted; \(text($0["dropped_ports"])) port(s) dropped\n" }
            }
        }
    }

    struct Port: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The connected ports of the networks.", subcommands: [List.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every connected port (or one network's), with its counters.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only this network's ports.") var network: String?
            func run() throws {
                let r = try connection.call(TargetDaemon.self, "port_list", network.map { ["network": .string($0)] })
                connection.print(r) { r in
                    table(["NETWORK", "PEER", "PAIR", "PORT", "RX FRAMES", "TX FRAMES"], (r.array ?? []).map {
                        [text($0["network"]), text($0["peer"]), text($0["queue_pair"]), text($0["port"]), text($0["rx_frames"]), text($0["tx_frames"])]
                    })
                }
            }
        }
    }

    struct Host: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, add and remove the hosts the target knows ([[host]]) while it serves.",
            subcommands: [List.self, Add.self, Remove.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every known host (or one), with where it is allowed.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only this host.") var name: String?
            func run() throws {
                let r = try connection.call(TargetDaemon.self, "host_list", name.map { ["name": .string($0)] })
                connection.print(r) { r in
                    let rows = (r.array ?? []).map { h -> [String] in
                        [text(h["name"]), text(h["authenticated"]),
                         (h["allowed_on"]?.array ?? []).map { text($0) }.joined(separator: ", ")]
                    }
                    return table(["NAME", "KEY", "ALLOWED ON"], rows)
                }
            }
        }

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Add a host: its name (the initiator's host_name) and the target's copy of its key.")
            @OptionGroup var connection: Connection
            @Argument(help: "The host's name.") var name: String
            @Option(help: "A key file (repeatable: two while its key is rotated); none: known by name only.") var keyFile: [String] = []
            func run() throws {
                var p: [String: JSONValue] = ["name": .string(name)]
                if !keyFile.isEmpty { p["key_files"] = JSONValue(keyFile) }
                let r = try connection.call(TargetDaemon.self, "host_add", .object(p))
                connection.print(r) { "host \(text($0["name"])) added\(($0["authenticated"]?.bool ?? false) ? "" : " (no key: known by name only)")\n" }
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Remove a host (refused while an export, network or port allows it by name).")
            @OptionGroup var connection: Connection
            @Argument(help: "The host's name.") var name: String
            func run() throws {
                let r = try connection.call(TargetDaemon.self, "host_remove", ["name": .string(name)])
                connection.print(r) { _ in "host \(name) removed\n" }
            }
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, create, resize and delete exports while the target serves.",
            subcommands: [List.self, Create.self, Resize.self, Delete.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every export (or one), with its queues and state.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only this export.") var name: String?
            func run() throws {
                let r = try connection.call(TargetDaemon.self, "export_list", name.map { ["name": .string($0)] })
                connection.print(r) { r in
                    let rows = (r.array ?? []).map { e -> [String] in
                        let backing = e["file"].map { "file \(text($0))" } ?? e["device"].map { "device \(text($0))" } ?? "memory"
                        return [text(e["name"]), backing, bytes(e["capacity"]), text(e["read_only"]), text(e["queues"]), text(e["state"])]
                    }
                    return table(["NAME", "BACKING", "CAPACITY", "READ-ONLY", "QUEUES", "STATE"], rows)
                }
            }
        }

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Add an export and serve it at once (the keys of a TOML [[export]] table).")
            @OptionGroup var connection: Connection
            @Argument(help: "The export's name (what initiators connect to).") var name: String
            @Option(help: "Back it with this file (created when missing, with --size).") var file: String?
            @Option(help: "Back it with this block device.") var device: String?
            @Flag(help: "Back it with memory (needs --size).") var memory = false
            @Option(help: "Size: bytes or 64M/1G.") var size: String?
            @Flag(help: "Serve it read-only.") var readOnly = false
            @Option(help: "512 or 4096.") var blockSize: Int?
            @Option(help: "Largest queue depth granted.") var queueDepth: Int?
            @Option(help: "Largest I/O per command: bytes or 1M.") var maxIO: String?
            @Option(help: "A configured host allowed to connect (repeatable).") var allowedHost: [String] = []
            @Flag(help: "Allow any host that reaches the target.") var allowAnyHost = false

            func run() throws {
                var p: [String: JSONValue] = ["name": .string(name)]
                if let file { p["file"] = .string(file) }
                if let device { p["device"] = .string(device) }
                if memory { p["memory"] = true }
                if let size { p["size"] = .string(size) }
                if readOnly { p["read_only"] = true }
                if let blockSize { p["block_size"] = JSONValue(blockSize) }
                if let queueDepth { p["queue_depth"] = JSONValue(queueDepth) }
                if let maxIO { p["max_io"] = .string(maxIO) }
                if !allowedHost.isEmpty { p["allowed_hosts"] = JSONValue(allowedHost) }
                if allowAnyHost { p["allow_any_host"] = true }
                let r = try connection.call(TargetDaemon.self, "export_create", .object(p))
                connection.print(r) { "export \(text($0["name"])) created: \(bytes($0["capacity"]))\n" }
            }
        }

        struct Resize: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Grow a file export online; its initiators reconnect and tell their guests the new capacity.")
            @OptionGroup var connection: Connection
            @Argument(help: "The export's name.") var name: String
            @Option(help: "The new capacity: bytes or 128M/2G (larger than now).") var size: String
            func run() throws {
                let r = try connection.call(TargetDaemon.self, "export_resize", ["name": .string(name), "size": .string(size)])
                connection.print(r) { r in
                    let q = r["reconnecting_queues"]?.int ?? 0
                    return "export \(name) resized: \(bytes(r["old_capacity"])) -> \(bytes(r["capacity"]))"
                        + (q > 0 ? "; \(q) queue(s) reconnecting\n" : "\n")
                }
            }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Remove an export. Refused while hosts are connected unless --force (their guests' I/O then fails).")
            @OptionGroup var connection: Connection
            @Argument(help: "The export's name.") var name: String
            @Flag(help: "Drop the export's connections.") var force = false
            func run() throws {
                var p: [String: JSONValue] = ["name": .string(name)]
                if force { p["force"] = true }
                let r = try connection.call(TargetDaemon.self, "export_delete", .object(p))
                connection.print(r) { r in
                    let n = r["dropped_queues"]?.int ?? 0
                    return n == 0 ? "export \(name) deleted\n"
                        : "export \(name) deleted; \(n) queue(s) dropped, draining (the name is free once they are gone)\n"
                }
            }
        }
    }
}

/// Any method, raw: for scripts and for methods vireoctl has no command for yet.
struct Rpc: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Call any control method with JSON parameters (rpc_get_methods lists them).")
    @OptionGroup var connection: Connection
    @Flag(help: "Call the initiator's socket (default: the target's).") var initiator = false
    @Argument(help: "The method, e.g. export_list.") var method: String
    @Argument(help: "Its parameters as a JSON object.") var params: String?
    func run() throws {
        var p: JSONValue?
        if let params {
            guard let v = JSONValue.parse(Array(params.utf8)), v.object != nil else {
                throw ValidationError("parameters must be a JSON object, e.g. '{\"name\": \"vol0\"}'")
            }
            p = v
        }
        let r = initiator ? try connection.call(InitiatorDaemon.self, method, p) : try connection.call(TargetDaemon.self, method, p)
        print(r.pretty)
    }
}

struct Initiator: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "An initiator daemon (vireo-initiator serve --control-socket PATH).",
        subcommands: [Disk.self, Nic.self, Config<InitiatorDaemon>.self, Stats<InitiatorDaemon>.self,
                      Version<InitiatorDaemon>.self])

    /// `--force` deletes of a device: the daemon's answer as a line.
    static func deleted(_ what: String, _ r: JSONValue) -> String {
        text(r["state"]) == "detached"
            ? "\(what) \(text(r["socket"])) detached: its I/O fails; it goes once the VMM lets go (QMP device_del)\n"
            : "\(what) \(text(r["socket"])) deleted\n"
    }

    /// Options every device has: its socket, its target, and what the target must prove.
    struct Device: ParsableArguments {
        @Option(help: "The vhost-user socket path to serve (the VMM's chardev path).") var socket: String
        @Option(help: "The target's host:port.") var target: String
        @Option(help: "A key file the target must prove it holds (repeatable: two while it rotates).") var targetKeyFile: [String] = []
        @Option(help: "The name the target must call itself.") var targetName: String?

        var params: [String: JSONValue] {
            var p: [String: JSONValue] = ["socket": .string(socket), "target": .string(target)]
            if !targetKeyFile.isEmpty { p["target_key_files"] = JSONValue(targetKeyFile) }
            if let targetName { p["target_name"] = .string(targetName) }
            return p
        }
    }

    struct Disk: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, create and delete remote disks while the initiator serves (hot-add: create, then QMP device_add).",
            subcommands: [List.self, Create.self, Delete.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every disk (or one), with its export, capacity and state.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only the disk on this socket.") var socket: String?
            func run() throws {
                let r = try connection.call(InitiatorDaemon.self, "disk_list", socket.map { ["socket": .string($0)] })
                connection.print(r) { r in
                    let rows = (r.array ?? []).map { d -> [String] in
                        [text(d["id"]), text(d["socket"]), "\(text(d["export"]))@\(text(d["target"]))", bytes(d["capacity"]),
                         text(d["queues"]), text(d["vmm_attached"]), text(d["state"])]
                    }
                    return table(["ID", "SOCKET", "EXPORT", "CAPACITY", "QUEUES", "VMM", "STATE"], rows)
                }
            }
        }

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Connect a disk to a target export and serve its socket (the keys of a TOML [[disk]] table).")
            @OptionGroup var connection: Connection
            @OptionGroup var device: Device
            @Option(help: "The export's name on the target.") var export: String
            @Option(help: "Virtqueues (each with its own connection).") var queues: Int?
            @Option(help: "Virtqueue size and commands in flight per queue (a power of two).") var queueDepth: Int?
            @Flag(help: "Serve it read-only.") var readOnly = false
            @Option(help: "How long the target may stay away before held requests fail (e.g. 120s).") var lossTimeout: String?
            @Option(help: "windows (default) or whole-memory.") var remoteAccess: String?
            func run() throws {
                var p = device.params
                p["export"] = .string(export)
                if let queues { p["queues"] = JSONValue(queues) }
                if let queueDepth { p["queue_depth"] = JSONValue(queueDepth) }
                if readOnly { p["read_only"] = true }
                if let lossTimeout { p["loss_timeout"] = .string(lossTimeout) }
                if let remoteAccess { p["remote_access"] = .string(remoteAccess) }
                let r = try connection.call(InitiatorDaemon.self, "disk_create", .object(p))
                connection.print(r) { "disk \(text($0["id"])) on \(text($0["socket"])): export \(text($0["export"])), \(bytes($0["capacity"]))\n" }
            }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Stop serving a disk. Refused while a VMM is attached unless --force (its I/O then fails with IOERR).")
            @OptionGroup var connection: Connection
            @Argument(help: "The disk's socket.") var socket: String
            @Flag(help: "Detach it from an attached VMM.") var force = false
            func run() throws {
                var p: [String: JSONValue] = ["socket": .string(socket)]
                if force { p["force"] = true }
                let r = try connection.call(InitiatorDaemon.self, "disk_delete", .object(p))
                connection.print(r) { Initiator.deleted("disk", $0) }
            }
        }
    }

    struct Nic: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, create and delete remote NICs while the initiator serves (hot-add: create, then QMP netdev_add + device_add).",
            subcommands: [List.self, Create.self, Delete.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every NIC (or one), with its network, MAC, link and state.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only the NIC on this socket.") var socket: String?
            func run() throws {
                let r = try connection.call(InitiatorDaemon.self, "nic_list", socket.map { ["socket": .string($0)] })
                connection.print(r) { r in
                    let rows = (r.array ?? []).map { n -> [String] in
                        [text(n["id"]), text(n["socket"]), "\(text(n["network"]))@\(text(n["target"]))", text(n["mac"]),
                         text(n["link_up"]), text(n["vmm_attached"]), text(n["state"])]
                    }
                    return table(["ID", "SOCKET", "NETWORK", "MAC", "LINK", "VMM", "STATE"], rows)
                }
            }
        }

        struct Create: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Connect a NIC to a target network and serve its socket (the keys of a TOML [[nic]] table).")
            @OptionGroup var connection: Connection
            @OptionGroup var device: Device
            @Option(help: "The network's name on the target.") var network: String
            @Option(help: "The NIC's MAC (the VMM's -device mac= must match).") var mac: String
            @Option(help: "RX/TX queue pairs.") var queuePairs: Int?
            @Option(help: "Largest virtqueue size (a power of two).") var queueSize: Int?
            @Option(help: "A named port of the network to claim.") var port: String?
            func run() throws {
                var p = device.params
                p["network"] = .string(network)
                p["mac"] = .string(mac)
                if let queuePairs { p["queue_pairs"] = JSONValue(queuePairs) }
                if let queueSize { p["queue_size"] = JSONValue(queueSize) }
                if let port { p["port"] = .string(port) }
                let r = try connection.call(InitiatorDaemon.self, "nic_create", .object(p))
                connection.print(r) { "nic \(text($0["id"])) on \(text($0["socket"])): network \(text($0["network"])), mac \(text($0["mac"])), MTU \(text($0["mtu"]))\n" }
            }
        }

        struct Delete: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Stop serving a NIC. Refused while a VMM is attached unless --force (its link then goes down).")
            @OptionGroup var connection: Connection
            @Argument(help: "The NIC's socket.") var socket: String
            @Flag(help: "Detach it from an attached VMM.") var force = false
            func run() throws {
                var p: [String: JSONValue] = ["socket": .string(socket)]
                if force { p["force"] = true }
                let r = try connection.call(InitiatorDaemon.self, "nic_delete", .object(p))
                connection.print(r) { Initiator.deleted("nic", $0) }
            }
        }
    }
}
