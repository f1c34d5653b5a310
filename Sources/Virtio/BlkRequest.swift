/// A parsed virtio-blk request (virtio 1.x §5.2.6): the header fields and
/// where its data and status byte are in the chain.
///
/// Data is a byte range of the chain's readable stream (OUT, DISCARD,
/// WRITE_ZEROES: the device reads it) or writable stream (IN, GET_ID: the
/// device writes it); iterate it with `chain.slice(...)` or `dataSlice(in:)`.
/// The status byte is always the chain's last writable byte.
public struct BlkRequest: Equatable, Sendable {
    /// The request type (only supported types reach a parsed request).
    public var type: VirtioBlk.RequestType
    /// `reserved` / ioprio field of the header.
    public var ioprio: UInt32
    /// Starting 512-byte sector (IN/OUT).
    public var sector: UInt64
    /// Offset of the data in its stream.
    public var dataOffset: UInt32
    /// Data length in bytes.
    public var dataLength: UInt32
    /// The data is in the writable stream (the device fills it).
    public var dataIsWritable: Bool
    /// Offset of the status byte in the writable stream.
    public var statusOffset: UInt32

    /// The data as host pieces (for RDMA scatter/gather or copies).
    public func dataSlice(in chain: Chain) -> Chain.Slice {
        // Cannot fail for a request parsed from this chain.
        chain.slice(writable: dataIsWritable, offset: dataOffset, length: dataLength)!
    }

    /// The `len` to put in the used element on completion: the writable
    /// stream up to and including the status byte, whatever the status (as
    /// QEMU's virtio-blk reports). A failed IN may have been written in part
    /// (an RDMA WRITE of the target before the failure), and the status byte
    /// sits after the data: the runtime dirty-logs exactly this many writable
    /// bytes during a migration, so a shorter length would leave the status
    /// byte, or a partly written buffer, stale on the destination.
    public var usedLength: UInt32 { statusOffset + 1 }

    /// Number of discard / write-zeroes segments in the data.
    public var segmentCount: Int { Int(dataLength) / VirtioBlk.DiscardWriteZeroesSegment.size }

    /// Reads discard / write-zeroes segment `index` (copying 16 bytes).
    public func segment(_ index: Int, in chain: Chain) -> VirtioBlk.DiscardWriteZeroesSegment? {
        guard index >= 0, index < segmentCount else { return nil }
        var raw = (UInt64(0), UInt64(0))
        // SAFETY: `raw` is a 16-byte local; copyReadable fills exactly 16 bytes.
        let ok = withUnsafeMutableBytes(of: &raw) {
            chain.copyReadable(from: dataOffset + UInt32(index * VirtioBlk.DiscardWriteZeroesSegment.size), into: $0)
        }
        guard ok else { return nil }
        return withUnsafeBytes(of: &raw) { VirtioBlk.DiscardWriteZeroesSegment(bytes: $0) }
    }

    /// Writes `status` into the chain's status byte.
    public func complete(_ chain: Chain, status: VirtioBlk.Status) {
        // SAFETY: statusOffset < writableBytes (checked at parse); one byte inside a segment.
        chain.writableByte(at: statusOffset)?.storeBytes(of: status.rawValue, as: UInt8.self)
    }
}
