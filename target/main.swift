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
#if canImport(Glibc)
import Glibc
#endif

@main
struct VireoTarget: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-target",
        abstract: "Vireo target: serves block and packet endpoints over RDMA.",
        subcommands: [Serve.self, FabricCheck.self, Devices.self])
}

extension VireoTarget {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve block exports (files, block devices, memory) and L2 networks over RDMA until SIGTERM.")

        @Option(help: "Address to listen on (host:port), an address of the RDMA netdev; overrides the config's listen.")
        var listen: String?

        @Option(name: .customLong("export"), help: ArgumentHelp(
            "An export: name=vol0,file=/tmp/vol0.img,size=64M[,ro][,block-size=4096] (or device=PATH, or memory,size=...). Repeatable.",
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

        @Option(help: "Write the counters to this file (Prometheus text format) every interval, on SIGUSR1 and at exit.")
        var statsFile: String?

        @Option(help: "Seconds between stats file writes (default 10).")
        var statsInterval: Double?

        @Option(help: "Seconds a block connection may be idle and silent before its peer is probed (default 5).")
        var keepalive: Double?

        @Option(help: "Seconds without a completion, work posted, before a block peer counts as vanished and is dropped (default 15).")
        var peerTimeout: Double?

        func run() throws {
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            let logger = Logger(label: "vireo.target")
            var cfg = TargetConfig()
            if let path = config {
                guard let f = fopen(path, "r") else {
                    throw ValidationError("cannot open config \(path): \(String(cString: strerror(errno)))")
                }
                var text = [UInt8]()
                var buf = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = fread(&buf, 1, buf.count, f)
                    if n <= 0 { break }
                    text += buf[0..<n]
                }
                fclose(f)
                do { cfg = try TargetConfig(toml: String(decoding: text, as: UTF8.self)) } catch {
                    throw ValidationError("\(path):\n\(error)")
                }
            }
            if let listen { cfg.listen = listen }
            if let workers { cfg.workers = workers }
            if busyPoll { cfg.busyPoll = true }
            if let statsFile { cfg.statsFile = statsFile }
            if let keepalive { cfg.keepaliveSeconds = keepalive }
            if let peerTimeout { cfg.peerTimeoutSeconds = peerTimeout }
            if let statsInterval {
                guard statsInterval > 0 else { throw ValidationError("--stats-interval must be positive") }
                cfg.statsIntervalSeconds = statsInterval
            }
            do {
                for e in exports { cfg.exports.append(try ExportConfig(flag: e)) }
                for n in networks { cfg.networks.append(try NetworkConfig(flag: n)) }
                try cfg.validate()
            } catch {
                throw ValidationError("\(error)")
            }
            TerminationSignal.block()
            let daemon = try TargetDaemon(config: cfg, logger: logger)
            try daemon.start()
            TerminationSignal.wait(
                stats: cfg.statsFile.map { StatsFile(path: $0) }, intervalSeconds: cfg.statsIntervalSeconds ?? 10,
                logger: logger, collect: { daemon.statsSnapshot() },
                stop: { sig in
                    logger.info("signal \(sig): shutting down")
                    daemon.stop()
                })
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
