// vireo-target: the storage host's daemon. This executable only parses
// options and runs what the libraries build.
import ArgumentParser
import Logging
import VireoBlockTarget
import VireoFabric
import VireoPacketTarget
import VireoSys
import VireoTarget
import VireoDaemon
import VireoCommandLine
#if canImport(Glibc)
import Glibc
#endif

@main
struct VireoTarget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-target",
        abstract: "Vireo target: serves block and packet endpoints over RDMA.",
        subcommands: [Serve.self, FabricCheck.self, Devices.self, GenKeyCommand.self])
}

extension VireoTarget {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve block exports (files, block devices, memory) and L2 networks over RDMA until SIGTERM.")

        @Option(help: "Address to listen on (host:port), an address of the RDMA netdev; overrides the config's listen.")
        var listen: String?

        @Option(name: .customLong("export"), help: ArgumentHelp(
            "An export: name=vol0,file=/tmp/vol0.img,size=64M[,ro][,block-size=4096][,allowed-hosts=A+B][,allow-any-host=true] (or device=PATH, or memory,size=...). Repeatable.",
            valueName: "spec"))
        var exports: [String] = []

        @Option(name: .customLong("network"), help: ArgumentHelp(
            "A network (packet endpoint): name=lan0[,mtu=9000][,tap=vtap0][,aging=300][,allowed-macs=MAC+MAC][,port=vm1[:MAC+MAC]]... (named ports: NICs claim one with port=NAME; then only listed ports connect). Repeatable.",
            valueName: "spec"))
        var networks: [String] = []

        @Option(help: "TOML configuration file (listen, workers, [[export]] and [[network]] tables).")
        var config: String?

        @Option(help: "Worker threads (overrides the config's workers).")
        var workers: Int?

        @Flag(help: "Busy-poll completion queues and io_uring instead of poll-then-sleep (dedicated cores only).")
        var busyPoll = false

        @Option(help: "How the log is written to standard error: text, or json (one object per line).")
        var logFormat: LogFormat = .text

        @Option(help: "Serve Prometheus /metrics over HTTP on this numeric address:port (e.g. 127.0.0.1:9464).")
        var metricsListen: String?

        @Option(help: "Receive buffers each worker shares among its block connections (0: each connection its own; default 1024).")
        var sharedReceives: Int?

        @Option(help: "Write the counters to this file (Prometheus text format) every interval, on SIGUSR1 and at exit.")
        var statsFile: String?

        @Option(help: "Seconds between stats file writes (default 10).")
        var statsInterval: Double?

        @Option(help: "Serve the control API (JSON-RPC 2.0, docs/api.md; vireoctl) on this UNIX socket, mode 0600.")
        var controlSocket: String?

        @Option(help: "Seconds a block connection may be idle and silent before its peer is probed (default 5).")
        var keepalive: Double?

        @Option(help: "Seconds without a completion, work posted, before a block peer counts as vanished and is dropped (default 15).")
        var peerTimeout: Double?

        @Option(help: "The target's name in handshakes (default vireo-target:<host name>).")
        var name: String?

        @Option(help: "The target's secret key file (gen-key): the target proves itself to initiators with it.")
        var keyFile: String?

        @Option(name: .customLong("host"), help: ArgumentHelp(
            "A host the target knows: name=compute-1[,key-file=PATH] (the target's copy of its secret). With any, exports and networks admit only their allowed-hosts unless allow-any-host. Repeatable.",
            valueName: "spec"))
        var hosts: [String] = []

        @Option(help: "Seconds a new connection has to send its handshake (default 5).")
        var handshakeTimeout: Double?

        func run() throws {
            logFormat.bootstrap()
            var o = TargetServeOptions()
            o.name = name
            o.keyFile = keyFile
            o.hosts = hosts
            o.handshakeTimeoutSeconds = handshakeTimeout
            o.configFile = config
            o.listen = listen
            o.workers = workers
            o.busyPoll = busyPoll
            o.sharedReceives = sharedReceives
            o.metricsListen = metricsListen
            o.exports = exports
            o.networks = networks
            o.statsFile = statsFile
            o.controlSocket = controlSocket
            o.statsIntervalSeconds = statsInterval
            o.keepaliveSeconds = keepalive
            o.peerTimeoutSeconds = peerTimeout
            let cfg: TargetConfig
            do { cfg = try o.resolve() } catch {
                // EX_USAGE, and no usage text: the problems say what to fix.
                for p in error.problems { printError("vireo-target serve: \(p)") }
                throw ExitCode(64)
            }
            // SIGHUP reads the file again, with the same flags over it.
            try TargetDaemon.serve(cfg, logger: Logger(label: "vireo.target"), reread: { () throws(ConfigError) in try o.resolve() })
        }
    }

    struct FabricCheck: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fabric-check",
            abstract: "Serve fabric probes (latency, bandwidth, checksum) for vireo-initiator fabric-check.")

        @Option(help: "Address to listen on (host:port) — an address of the RDMA netdev.")
        var listen: String = "0.0.0.0:7471"

        @Option(help: "Exit after serving this many clients (default: serve until killed).")
        var connections: Int?

        @Flag(help: "Busy-poll completion queues instead of poll-then-sleep (dedicated cores only).")
        var busyPoll = false

        func run() throws {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            let logger = Logger(label: "vireo.target")
            let address = try FabricAddress(parsing: listen)
            let server = try FabricProbeServer(address: address, busyPoll: busyPoll, logger: logger)
            logger.info("fabric-check: listening on \(address.host):\(server.port)")
            server.serve(maxConnections: connections)
        }
    }

    struct Devices: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List RDMA devices and their ports.")
        func run() throws {
            let names = VerbsContext.deviceNames()
            if names.isEmpty { throw FabricError.noDevice(VerbsContext.noDeviceHint) }
            for name in names { print(try VerbsContext(deviceName: name).query()) }
        }
    }
}
