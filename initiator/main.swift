// vireo-initiator: the compute host's vhost-user backend. This executable
// only parses options and runs what the libraries build.
import VireoDaemon
import VireoCommandLine
import ArgumentParser
import Logging
import VhostUser
import VireoInitiator
import VireoFabric
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

@main
struct VireoInitiator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-initiator",
        abstract: "Vireo initiator: vhost-user disks and NICs backed by a remote target over RDMA.",
        subcommands: [Serve.self, FabricCheck.self, LocalDisk.self, LoopbackNet.self, GenKeyCommand.self])
}

extension VireoInitiator {
    struct FabricCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fabric-check",
            abstract: "Measure and verify the fabric path to a target running `vireo-target fabric-check`.")

        @Option(help: "The target's fabric-check address (host:port).")
        var connect: String

        @Option(help: "SEND ping-pongs to time.")
        var pingpongs: Int = 10_000

        @Option(help: "Ping-pong message size (9...65536 bytes).")
        var size: Int = 16

        @Option(help: "Bytes to move with RDMA WRITE and READ back (e.g. 64M).")
        var bytes: String = "64M"

        @Option(help: "Bytes per RDMA WRITE/READ request (e.g. 64K).")
        var block: String = "64K"

        @Option(help: "RDMA requests in flight.")
        var depth: Int = 16

        @Flag(help: "Busy-poll completion queues instead of poll-then-sleep.")
        var busyPoll = false

        @Flag(help: "Print one machine-readable line (key=value) instead of prose.")
        var machine = false

        func validate() throws {
            guard parseByteCount(bytes) != nil, parseByteCount(block) != nil else {
                throw ValidationError("--bytes and --block take sizes such as 64M or 4096")
            }
            guard pingpongs >= 0, depth > 0 else { throw ValidationError("--pingpongs ≥ 0, --depth > 0") }
        }

        func run() throws {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            let check = try FabricCheckReport.run(
                connectTo: try FabricAddress(parsing: connect), pingPongs: pingpongs, messageSize: size,
                bytes: parseByteCount(bytes)!, blockSize: parseByteCount(block)!, depth: depth, busyPoll: busyPoll)
            print(machine ? check.machineLine : check.report)
            if !check.ok { throw ExitCode(1) }
        }
    }
}

/// Options shared by the vhost-user serving commands.
struct VhostSocketOptions: ParsableArguments {
    @Option(help: "vhost-user socket path the VMM connects to.")
    var socket: String

    @Option(help: "Socket file mode, octal (e.g. 660).")
    var socketMode: String?

    @Flag(help: "Busy-poll the virtqueues instead of poll-then-sleep (dedicated cores only).")
    var busyPoll = false

    func options() throws -> VhostUserOptions {
        var o = VhostUserOptions()
        if let m = socketMode {
            guard let mode = UInt32(m, radix: 8) else { throw ValidationError("--socket-mode takes octal, e.g. 660") }
            o.socketMode = mode
        }
        o.polling.busyPoll = busyPoll
        return o
    }
}

/// Serves `device` on a vhost-user socket until SIGINT/SIGTERM.
func serveVhostUser(_ device: VhostUserDevice, _ socket: VhostSocketOptions, what: String) throws {
    LogFormat.text.bootstrap()
    try InitiatorService.serveLocal(device, socket: socket.socket, options: try socket.options(), what: what,
                                    logger: Logger(label: "vireo.initiator"))
}

extension VireoInitiator {
    struct LocalDisk: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "local-disk",
            abstract: "Serve a memory-backed virtio-blk disk over vhost-user, with no fabric (a stand-in for tests).")

        @OptionGroup var vhost: VhostSocketOptions

        @Option(help: "Disk size (e.g. 64M).")
        var size: String = "64M"

        @Option(help: "Logical block size: 512 or 4096.")
        var blockSize: UInt32 = 512

        @Option(help: "Virtqueues (num-queues in QEMU).")
        var queues: Int = 1

        @Option(help: "Maximum virtqueue size.")
        var queueSize: UInt16 = 256

        @Option(help: "Keep the disk's bytes in this file (mapped shared) so they survive a restart.")
        var file: String?

        func validate() throws {
            guard let bytes = parseByteCount(size), bytes > 0, bytes % Int(blockSize) == 0 else {
                throw ValidationError("--size must be a positive multiple of the block size")
            }
            guard blockSize == 512 || blockSize == 4096 else { throw ValidationError("--block-size is 512 or 4096") }
            guard (1...64).contains(queues) else { throw ValidationError("--queues is 1...64") }
        }

        func run() throws {
            let bytes = parseByteCount(size)!
            let device = try file.map { path in
                try MemoryBlockDevice.fileBacked(path: path, capacityBytes: bytes, blockSize: blockSize,
                                                 numQueues: queues, maxQueueSize: queueSize)
            } ?? MemoryBlockDevice(capacityBytes: bytes, blockSize: blockSize, numQueues: queues, maxQueueSize: queueSize)
            try serveVhostUser(device, vhost, what: "memory disk \(size), \(queues) queue(s)")
        }
    }

    struct LoopbackNet: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "loopback-net",
            abstract: "Serve a virtio-net NIC that echoes frames back, over vhost-user, with no fabric (a stand-in for tests).")

        @OptionGroup var vhost: VhostSocketOptions

        @Option(help: "Queue pairs (MQ).")
        var queuePairs: Int = 1

        @Option(help: "MAC address (xx:xx:xx:xx:xx:xx).")
        var mac: String = "52:54:00:12:34:56"

        func run() throws {
            let bytes = mac.split(separator: ":").compactMap { UInt8($0, radix: 16) }
            guard bytes.count == 6 else { throw ValidationError("--mac takes six hex bytes") }
            let device = LoopbackNetDevice(mac: bytes, queuePairs: queuePairs)
            try serveVhostUser(device, vhost, what: "loopback NIC \(mac)")
        }
    }
}

extension VireoInitiator {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve",
            abstract: "Serve remote disks and NICs: vhost-user virtio-blk and virtio-net devices backed by Vireo targets over RDMA.",
            discussion: """
            --disk socket=PATH,target=HOST:PORT,export=NAME[,queues=N][,queue-depth=N][,ro][,loss-timeout=120s]
            --nic socket=PATH,target=HOST:PORT,network=NAME,mac=52:54:00:00:00:01[,queue-pairs=N][,queue-size=N][,port=NAME]
            --config FILE: TOML with [[disk]] tables (socket, target, export, queues, queue_depth, read_only,
            loss_timeout) and [[nic]] tables (socket, target, network, mac, queue_pairs, queue_size, port);
            top-level stats_file and stats_interval as the flags below, control_socket and
            control_socket_mode (default 0o600) for the control API, metrics_listen.
            Handshake (docs/security.md): top-level host_name and host_key_file (or the flags below);
            per device target_key_file (the target must prove it holds that secret) and target_name.
            --stats-file PATH: counters in the Prometheus text format, rewritten atomically every
            --stats-interval seconds (default 10), on SIGUSR1 and at exit.
            """)

        @Option(name: .customLong("disk"), help: "A remote disk (repeatable); see the discussion for the keys.")
        var disks: [String] = []

        @Option(name: .customLong("nic"), help: "A remote NIC (repeatable); see the discussion for the keys.")
        var nics: [String] = []

        @Option(help: "TOML file with [[disk]] and [[nic]] tables.")
        var config: String?

        @Option(help: "Socket file mode, octal (e.g. 660).")
        var socketMode: String?

        @Flag(help: "Busy-poll the virtqueues instead of poll-then-sleep (dedicated cores only).")
        var busyPoll = false

        @Option(help: "Write the counters to this file (Prometheus text format) every interval, on SIGUSR1 and at exit.")
        var statsFile: String?

        @Option(help: "Seconds between stats file writes (default 10).")
        var statsInterval: Double?

        @Option(help: "How the log is written to standard error: text, or json (one object per line).")
        var logFormat: LogFormat = .text

        @Option(help: "Serve Prometheus /metrics over HTTP on this numeric address:port (e.g. 127.0.0.1:9465).")
        var metricsListen: String?

        @Option(help: "Idle polls of the virtqueues and completion queues before a worker sleeps (a cap, default 2000).")
        var spinIterations: Int?

        @Option(help: "Microseconds an idle worker keeps polling before it sleeps (default 50).")
        var spinUs: Int?

        @Option(help: "This host's name in handshakes (default: the machine's host name); the target's [[host]] names it.")
        var hostName: String?

        @Option(help: "This host's secret key file (gen-key); a target with its copy checks the handshake's proof.")
        var hostKeyFile: String?

        @Option(help: "Serve the control API (JSON-RPC 2.0, docs/api.md; vireoctl initiator) on this UNIX socket: disks and NICs added and removed at run time.")
        var controlSocket: String?

        @Flag(help: ArgumentHelp("Test only: do not dirty-log what completions write into guest buffers during a migration (the migration test's negative control).", visibility: .hidden))
        var testUnloggedDeviceWrites = false

        func run() throws {
            logFormat.bootstrap()
            var o = InitiatorServeOptions()
            o.testUnloggedDeviceWrites = testUnloggedDeviceWrites
            o.disks = disks
            o.nics = nics
            o.configFile = config
            o.socketMode = socketMode
            o.busyPoll = busyPoll
            o.statsFile = statsFile
            o.statsIntervalSeconds = statsInterval
            o.metricsListen = metricsListen
            o.spinIterations = spinIterations
            o.spinMicroseconds = spinUs
            o.hostName = hostName
            o.hostKeyFile = hostKeyFile
            o.controlSocket = controlSocket
            let (serve, options): (ServeConfig, VhostUserOptions)
            do { (serve, options) = try o.resolve() } catch {
                // EX_USAGE, and no usage text: the problems say what to fix.
                for p in error.problems { printError("vireo-initiator serve: \(p)") }
                throw ExitCode(64)
            }
            // SIGHUP reads the file again, with the same flags over it.
            let reread = { () throws(ConfigError) -> ServeConfig in try o.resolve().0 }
            do { try InitiatorService.serve(serve, options: options, logger: Logger(label: "vireo.initiator"), reread: reread) } catch {
                printError("vireo-initiator serve: \(error)")
                throw ExitCode(1)
            }
        }
    }
}

