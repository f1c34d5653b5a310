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
        abstract: "Manage running Vireo daemons: exports on a target, and (soon) disks and NICs on an initiator.",
        version: VireoVersion.current,
        subcommands: [Target.self, Rpc.self])
}

/// Where to reach the daemon and how to print.
struct Connection: ParsableArguments {
    @Option(help: "The daemon's control socket.")
    var socket: String = "/run/vireo/target.sock"

    @Flag(help: "Print the daemon's JSON result instead of a table.")
    var json = false

    /// Calls `method`; a daemon's error becomes the command's error (exit 1) with its message.
    func call(_ method: String, _ params: JSONValue? = nil) throws -> JSONValue {
        do { return try ControlClient(path: socket).call(method, params) } catch {
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

struct Target: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A target daemon (vireo-target serve --control-socket PATH).",
        subcommands: [Export.self, Config.self, Stats.self, Version.self])

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The daemon's version and wire protocol.")
        @OptionGroup var connection: Connection
        func run() throws {
            let r = try connection.call("version_get")
            connection.print(r) { "\(text($0["daemon"])) \(text($0["version"])) (wire protocol \(text($0["wire_protocol"])))\n" }
        }
    }

    struct Config: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The running configuration as TOML (start a daemon from it to serve the same endpoints).")
        @OptionGroup var connection: Connection
        func run() throws {
            let r = try connection.call("config_get")
            connection.print(r) { text($0["toml"]) }
        }
    }

    struct Stats: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every counter (name, labels, value).")
        @OptionGroup var connection: Connection
        @Option(help: "Only metrics whose name contains this.")
        var filter: String?
        func run() throws {
            let r = try connection.call("stats_get")
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

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List, create and delete exports while the target serves.",
            subcommands: [List.self, Create.self, Delete.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Every export (or one), with its queues and state.")
            @OptionGroup var connection: Connection
            @Argument(help: "Only this export.") var name: String?
            func run() throws {
                let r = try connection.call("export_list", name.map { ["name": .string($0)] })
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
                let r = try connection.call("export_create", .object(p))
                connection.print(r) { "export \(text($0["name"])) created: \(bytes($0["capacity"]))\n" }
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
                let r = try connection.call("export_delete", .object(p))
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
        print(try connection.call(method, p).pretty)
    }
}
