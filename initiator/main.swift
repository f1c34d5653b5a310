// vireo-initiator: the compute host's vhost-user backend. This executable
// only parses options and runs what the libraries build.
import VireoDaemon
import ArgumentParser
import Foundation
import Logging
import VhostUser
import VireoInitiator
import VireoFabric
import VireoSys

@main
struct VireoInitiator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-initiator",
        abstract: "Vireo initiator: vhost-user disks and NICs backed by a remote target over RDMA.",
        subcommands: [Serve.self, FabricCheck.self, LocalDisk.self, LoopbackNet.self])
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
            let total = parseByteCount(bytes)!, blockSize = parseByteCount(block)!
            let address = try FabricAddress(parsing: connect)
            let client = try FabricProbeClient(
                connectTo: address, bufferSize: total, depth: depth, busyPoll: busyPoll)
            defer { client.close() }
            let stats = try client.pingPong(count: max(pingpongs, 1), size: size)
            let local = try RegisteredBuffer(pd: client.connection.pd, count: total)
            let back = try RegisteredBuffer(pd: client.connection.pd, count: total)
            fillPattern(local.bytes, seed: 0x76697265)
            let expected = checksum64(UnsafeRawBufferPointer(local.bytes))
            let w = try client.write(from: local.region, length: total, block: blockSize, depth: depth)
            let remote = try client.remoteChecksum()
            let r = try client.read(into: back.region, length: total, block: blockSize, depth: depth)
            let readBack = checksum64(UnsafeRawBufferPointer(back.bytes))
            let ok = remote == expected && readBack == expected
            if machine {
                print("fabric-check ok=\(ok ? 1 : 0) pingpong_size=\(stats.messageSize) rtt_p50_ns=\(stats.p50) "
                      + "rtt_p99_ns=\(stats.p99) rtt_min_ns=\(stats.min) write_MBps=\(w.megabytesPerSecond) "
                      + "read_MBps=\(r.megabytesPerSecond) block=\(blockSize) bytes=\(total)")
            } else {
                print("fabric-check \(client.connection.localAddress) -> \(client.connection.peerAddress)")
                print("  \(stats)")
                print("  \(w)")
                print("  \(r)")
                print("  data: \(ok ? "verified" : "MISMATCH") (checksum \(String(expected, radix: 16)), "
                      + "target \(String(remote, radix: 16)), read back \(String(readBack, radix: 16)))")
            }
            if !ok { throw ExitCode(1) }
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
    TerminationSignal.block()
    LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
    let logger = Logger(label: "vireo.initiator")
    let server = try VhostUserServer(path: socket.socket, device: device, options: try socket.options(), logger: logger)
    try server.start()
    logger.info("\(what) on vhost-user socket \(socket.socket)")
    let sig = TerminationSignal.wait()
    logger.info("signal \(sig): stopping")
    server.stop()
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
            top-level stats_file and stats_interval as the flags below.
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

        @Option(help: "Idle polls of the virtqueues and completion queues before a worker sleeps (a cap, default 2000).")
        var spinIterations: Int?

        @Option(help: "Microseconds an idle worker keeps polling before it sleeps (default 50).")
        var spinUs: Int?

        func run() throws {
            if let statsInterval, !(statsInterval > 0) { throw ValidationError("--stats-interval must be positive") }
            TerminationSignal.block()
            LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
            var serve = ServeConfig()
            var problems: [String] = []
            for d in disks {
                do { serve.disks.append(try DiskConfig.parse(diskOption: d)) } catch { problems += error.problems }
            }
            for n in nics {
                do { serve.nics.append(try NicConfig.parse(nicOption: n)) } catch { problems += error.problems }
            }
            if let path = config {
                do {
                    let text = try String(contentsOfFile: path, encoding: .utf8)
                    let file = try ServeConfig.parse(toml: text, source: path)
                    serve.disks += file.disks
                    serve.nics += file.nics
                    serve.statsFile = file.statsFile
                    serve.statsIntervalSeconds = file.statsIntervalSeconds
                } catch let e as ConfigError { problems += e.problems } catch {
                    problems.append("\(path): cannot read: \(error)")
                }
            }
            if problems.isEmpty {
                do { try serve.checkUnique() } catch { problems += error.problems }
            }
            guard problems.isEmpty else {
                for p in problems { printError("vireo-initiator serve: \(p)") }
                throw ExitCode(2)
            }
            var options = VhostUserOptions()
            if let m = socketMode {
                guard let mode = UInt32(m, radix: 8) else { throw ValidationError("--socket-mode takes octal, e.g. 660") }
                options.socketMode = mode
            }
            options.polling.busyPoll = busyPoll
            if let spinIterations {
                guard spinIterations >= 0 else { throw ValidationError("--spin-iterations must be ≥ 0") }
                options.polling.spinIterations = spinIterations
            }
            if let spinUs {
                guard spinUs >= 0 else { throw ValidationError("--spin-us must be ≥ 0") }
                options.polling.spinNanoseconds = UInt64(spinUs) * 1000
            }
            let logger = Logger(label: "vireo.initiator")
            let service: InitiatorService
            do { service = try InitiatorService(serve, options: options, logger: logger) } catch {
                printError("vireo-initiator serve: \(error)")
                throw ExitCode(1)
            }
            let statsPath = statsFile ?? serve.statsFile
            let disks = service.disks.map(\.device), nics = service.nics.map(\.device)
            let servers = service.disks.map(\.server) + service.nics.map(\.server)
            TerminationSignal.wait(
                stats: statsPath.map { StatsFile(path: $0) },
                intervalSeconds: statsInterval ?? serve.statsIntervalSeconds ?? 10, logger: logger,
                collect: { InitiatorService.statsSnapshot(disks: disks, nics: nics, servers: servers) },
                stop: { sig in
                    logger.info("signal \(sig): stopping")
                    service.stop()
                })
        }
    }
}

func printError(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
}
