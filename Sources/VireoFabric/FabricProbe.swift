import CVireoVerbs
import VireoSys

/// The fabric probe: a tiny protocol to measure and verify a fabric path.
///
/// Handshake (rdma_cm private data, little endian):
/// - request: "VPRB", version 1, 3 pad bytes, requested buffer size (u64) — 16 bytes.
/// - accept: "VPRB", version 1, 3 pad bytes, buffer address (u64), length (u64), rkey (u32) — 28 bytes.
/// - reject: a UTF-8 reason.
///
/// Messages (SEND, ≤ `FabricProbe.maxMessage` bytes): sequence (u64), kind (u8), payload.
/// Kind 0 (echo): the server sends the same bytes back. Kind 1 (checksum): the
/// server answers sequence (u64) + `checksum64` of its whole buffer (u64).
public enum FabricProbe {
    public static let magic: [UInt8] = Array("VPRB".utf8)
    public static let version: UInt8 = 1
    /// Largest probe message.
    public static let maxMessage = 65536
    /// Largest buffer the server lends to one client.
    public static let maxBuffer = 1 << 30
    /// Receive slots per side.
    static let slots = 16

    static let kindEcho: UInt8 = 0
    static let kindChecksum: UInt8 = 1

    static func request(bufferSize: Int) -> [UInt8] {
        var b = magic + [version, 0, 0, 0]
        b.append(le: UInt64(bufferSize))
        return b
    }

    static func parseRequest(_ pd: [UInt8]) -> Result<Int, ProbeReject> {
        guard pd.count >= 16, Array(pd[0..<4]) == magic else { return .failure(.init("not a fabric probe")) }
        guard pd[4] == version else { return .failure(.init("probe version \(pd[4]) unsupported (want \(version))")) }
        let size = pd.loadLE(UInt64.self, at: 8)
        guard size > 0, size <= UInt64(maxBuffer) else {
            return .failure(.init("buffer size \(size) out of range 1...\(maxBuffer)"))
        }
        return .success(Int(size))
    }

    static func accept(address: UInt64, length: Int, rkey: UInt32) -> [UInt8] {
        var b = magic + [version, 0, 0, 0]
        b.append(le: address)
        b.append(le: UInt64(length))
        b.append(le: rkey)
        return b
    }

    struct ProbeReject: Error { let reason: String; init(_ r: String) { reason = r } }
}

/// Latency percentiles of a ping-pong run, in nanoseconds.
public struct LatencyStats: Sendable, CustomStringConvertible {
    public var count: Int
    public var messageSize: Int
    public var min: UInt64
    public var p50: UInt64
    public var p99: UInt64
    public var max: UInt64
    public var mean: Double

    init(samples: inout [UInt64], messageSize: Int) {
        samples.sort()
        count = samples.count
        self.messageSize = messageSize
        min = samples.first ?? 0
        max = samples.last ?? 0
        p50 = samples.isEmpty ? 0 : samples[(samples.count - 1) / 2]
        p99 = samples.isEmpty ? 0 : samples[Swift.min(samples.count - 1, samples.count * 99 / 100)]
        mean = samples.isEmpty ? 0 : Double(samples.reduce(0, &+)) / Double(samples.count)
    }

    public var description: String {
        "ping-pong \(messageSize) B x\(count): round trip p50 \(fmtUs(p50)) µs, p99 \(fmtUs(p99)) µs, "
            + "min \(fmtUs(min)) µs (one-way p50 \(fmtUs(p50 / 2)) µs)"
    }
}

/// Throughput of a bandwidth run.
public struct Throughput: Sendable, CustomStringConvertible {
    public var operation: String
    public var bytes: Int
    public var blockSize: Int
    public var nanoseconds: UInt64
    public var megabytesPerSecond: Double { nanoseconds == 0 ? 0 : Double(bytes) / Double(nanoseconds) * 1000 }
    public var operationsPerSecond: Double {
        nanoseconds == 0 ? 0 : Double(bytes / Swift.max(blockSize, 1)) / Double(nanoseconds) * 1e9
    }
    public var description: String {
        "\(operation) \(blockSize) B blocks, \(bytes >> 20) MiB: "
            + "\(fmt1(megabytesPerSecond)) MB/s, \(fmt1(operationsPerSecond / 1000)) k ops/s"
    }
}

func fmtUs(_ ns: UInt64) -> String { fmt1(Double(ns) / 1000) }
func fmt1(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    return String(r)
}

extension Array where Element == UInt8 {
    mutating func append<T: FixedWidthInteger>(le value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// Loads a little-endian integer at `offset`; the caller checked the bounds.
    func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count)
        var v: T = 0
        // SAFETY: bounds checked above; loadUnaligned copies.
        withUnsafeBytes { v = $0.loadUnaligned(fromByteOffset: offset, as: T.self) }
        return T(littleEndian: v)
    }
}
