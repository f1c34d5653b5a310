// vireo-initiator: the compute host's vhost-user backend. This executable
// only parses options and runs what the libraries build.
import ArgumentParser
import Logging
import VireoFabric
import VireoSys

@main
struct VireoInitiator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-initiator",
        abstract: "Vireo initiator: vhost-user disks and NICs backed by a remote target over RDMA.",
        subcommands: [FabricCheck.self])
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
