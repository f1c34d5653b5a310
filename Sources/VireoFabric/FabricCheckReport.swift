import VireoSys

/// `vireo-initiator fabric-check`: times SEND ping-pongs against a probe server
/// (`vireo-target fabric-check`), moves a pattern there with RDMA WRITE, has the
/// server checksum it, reads it back with RDMA READ, and checks both checksums.
public struct FabricCheckReport: Sendable {
    public var pingPong: LatencyStats
    public var write: Throughput
    public var read: Throughput
    /// The pattern's checksum here, at the server, and read back.
    public var expected: UInt64
    public var remote: UInt64
    public var readBack: UInt64
    public var local: String
    public var peer: String
    public var bytes: Int
    public var blockSize: Int

    /// Both checksums match the pattern's.
    public var ok: Bool { remote == expected && readBack == expected }

    /// Runs the check against the server at `address`.
    public static func run(
        connectTo address: FabricAddress, pingPongs: Int, messageSize: Int, bytes: Int, blockSize: Int,
        depth: Int, busyPoll: Bool
    ) throws(FabricError) -> FabricCheckReport {
        let client = try FabricProbeClient(connectTo: address, bufferSize: bytes, depth: depth, busyPoll: busyPoll)
        defer { client.close() }
        let stats = try client.pingPong(count: max(pingPongs, 1), size: messageSize)
        let local = try RegisteredBuffer(pd: client.connection.pd, count: bytes)
        let back = try RegisteredBuffer(pd: client.connection.pd, count: bytes)
        fillPattern(local.bytes, seed: 0x76697265)
        let expected = checksum64(UnsafeRawBufferPointer(local.bytes))
        let w = try client.write(from: local.region, length: bytes, block: blockSize, depth: depth)
        let remote = try client.remoteChecksum()
        let r = try client.read(into: back.region, length: bytes, block: blockSize, depth: depth)
        let readBack = checksum64(UnsafeRawBufferPointer(back.bytes))
        return FabricCheckReport(pingPong: stats, write: w, read: r, expected: expected, remote: remote, readBack: readBack,
                           local: client.connection.localAddress, peer: client.connection.peerAddress,
                           bytes: bytes, blockSize: blockSize)
    }

    /// One machine-readable line (`key=value`), as scripts and the benchmark read it.
    public var machineLine: String {
        "fabric-check ok=\(ok ? 1 : 0) pingpong_size=\(pingPong.messageSize) rtt_p50_ns=\(pingPong.p50) "
            + "rtt_p99_ns=\(pingPong.p99) rtt_min_ns=\(pingPong.min) write_MBps=\(write.megabytesPerSecond) "
            + "read_MBps=\(read.megabytesPerSecond) block=\(blockSize) bytes=\(bytes)"
    }

    /// What a person reads: one line per measurement, then the verdict on the data.
    public var report: String {
        """
        fabric-check \(local) -> \(peer)
          \(pingPong)
          \(write)
          \(read)
          data: \(ok ? "verified" : "MISMATCH") (checksum \(String(expected, radix: 16)), \
        target \(String(remote, radix: 16)), read back \(String(readBack, radix: 16)))
        """
    }
}
