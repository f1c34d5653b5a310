import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// The back-end's own inflight record, for front-ends that keep none
/// (vhost-user.rst "Inflight I/O tracking", with the back-end holding the
/// file instead of the front-end).
///
/// QEMU's vhost-user-net never negotiates INFLIGHT_SHMFD. When its back-end
/// dies, QEMU cannot ask for the ring positions (GET_VRING_BASE) and restarts
/// each ring at the used index in guest memory, which is right only for a
/// back-end that completes buffers in the order it took them. A NIC does not
/// (receive buffers wait for frames; a quiesce hands held ones back first), so
/// a restarted back-end met buffers it had already returned and lost the ones
/// still held. With this record it resumes as with a front-end's region:
/// after the used index plus what was in flight, resubmitting those.
///
/// A file (`VhostUserDevice.restartRecordPath`, e.g. `<socket>.inflight`)
/// that outlives the process: a header naming the front-end, one ring
/// identity per queue, then the queue regions in `InflightRegion`'s layout.
/// It counts only for the same front-end process (its lowest guest memory
/// region: file identity, addresses, size) and the same ring (addresses,
/// size), and only after an unclean end: a clean stop (GET_VRING_BASE) or a
/// reset clears the ring's record. Layout:
/// ```
///   u64 magic; u16 num_queues; u16 desc_num; u8 packed; u8 pad[3]; u64 front-end;  (padded to 64)
///   per queue: u64 desc, avail, used (front-end addresses); u16 size; u16 valid; u8 pad[4]
///   (padded to 64) then the queue regions
/// ```
public final class RestartRecord: @unchecked Sendable {
    // SAFETY (Sendable): used by the session's control thread only; the queue
    // regions follow `InflightRegion`'s rules.

    static let magic: UInt64 = 0x3143_4552_4F45_5256   // "VREOREC1", little-endian
    static let ringIdentityBytes = 32

    /// The file.
    public let path: String
    /// The queue regions (the session's `inflight`).
    let region: InflightRegion
    /// Why an existing file's contents were not kept (nil: kept, or a new file).
    let discarded: String?

    /// Bytes before the queue regions for `numQueues` queues.
    static func headerBytes(numQueues: Int) -> Int {
        let raw = 64 + ringIdentityBytes * numQueues
        return (raw + InflightRegion.alignment - 1) / InflightRegion.alignment * InflightRegion.alignment
    }

    /// Opens (or creates) the record at `path` for `numQueues` rings of up to
    /// `queueSize` descriptors in the given layout, for front-end `frontend`
    /// (`Self.identity`). A file made for another front-end, layout or shape
    /// is cleared (`discarded` says why). `faultOwner`: the session's
    /// `PeerFaultGuard` tag (a truncated file fails that connection alone).
    init(path: String, numQueues: Int, queueSize: UInt16, packed: Bool, frontend: UInt64,
         faultOwner: UInt64? = nil) throws(SystemError) {
        self.path = path
        let header = Self.headerBytes(numQueues: numQueues)
        let total = header + numQueues * InflightRegion.queueRegionSize(queueSize: queueSize, packed: packed)
        // O_NOFOLLOW: the directory may be shared with the front-end (the socket's).
        let fd = try FileDescriptor.open(path, flags: O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
        let st = try fd.fileStatus()
        guard st.isRegularFile else { throw SystemError(call: "inflight record \(path): not a regular file", errno: EINVAL) }
        // Another user's file could feed this process chains to resubmit.
        guard st.owner == geteuid() else { throw SystemError(call: "inflight record \(path): owned by uid \(st.owner)", errno: EPERM) }
        guard st.permissions & 0o022 == 0 else {
            throw SystemError(call: "inflight record \(path): writable by others (mode \(String(st.permissions, radix: 8)))", errno: EPERM)
        }
        var why: String? = nil
        if st.size != total {
            why = st.size == 0 ? nil : "the file is \(st.size) bytes, \(total) expected"
            try fd.truncate(to: 0)
            try fd.truncate(to: total)
        }
        region = try InflightRegion(record: fd, headerBytes: header, numQueues: numQueues, queueSize: queueSize,
                                    packed: packed, peerOwner: faultOwner)
        let h = region.start
        if why == nil, st.size == total {
            // SAFETY: the header's 64 bytes lie inside the mapping.
            if h.load(as: UInt64.self) != Self.magic.littleEndian { why = "no record header" }
            else if UInt16(littleEndian: h.load(fromByteOffset: 8, as: UInt16.self)) != UInt16(numQueues)
                        || UInt16(littleEndian: h.load(fromByteOffset: 10, as: UInt16.self)) != queueSize {
                why = "made for another queue count or size"
            } else if h.load(fromByteOffset: 12, as: UInt8.self) != (packed ? 1 : 0) {
                why = "made for \(packed ? "split" : "packed") rings"
            } else if UInt64(littleEndian: h.load(fromByteOffset: 16, as: UInt64.self)) != frontend {
                why = "made for another front-end"
            }
        }
        discarded = why
        if why != nil || st.size != total {
            // SAFETY: `total` bytes are mapped from `start`.
            h.initializeMemory(as: UInt8.self, repeating: 0, count: total)
            h.storeBytes(of: UInt16(numQueues).littleEndian, toByteOffset: 8, as: UInt16.self)
            h.storeBytes(of: queueSize.littleEndian, toByteOffset: 10, as: UInt16.self)
            h.storeBytes(of: UInt8(packed ? 1 : 0), toByteOffset: 12, as: UInt8.self)
            h.storeBytes(of: frontend.littleEndian, toByteOffset: 16, as: UInt64.self)
            h.storeBytes(of: Self.magic.littleEndian, as: UInt64.self)
        }
    }

    /// Which front-end process a memory table belongs to: its lowest guest
    /// region's file (st_dev, st_ino), addresses and size. QEMU sends the
    /// same memfd again when it reconnects; a new QEMU has a new one.
    static func identity(of table: VhostUserMemoryTable) -> UInt64 {
        guard let low = table.mapped.min(by: { $0.descriptor.guestPhysicalAddress < $1.descriptor.guestPhysicalAddress }) else { return 0 }
        // FNV-1a over the words.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for w in [low.fileIdentity.device, low.fileIdentity.inode, low.descriptor.guestPhysicalAddress,
                  low.descriptor.frontendVirtualAddress, low.descriptor.size] {
            for b in 0..<8 {
                h ^= (w >> (8 * UInt64(b))) & 0xff
                h &*= 0x0000_0100_0000_01b3
            }
        }
        return h
    }

    private func ringIdentity(_ q: Int) -> UnsafeMutableRawPointer {
        // SAFETY: q < numQueues: the identity lies inside the header.
        region.start + 64 + q * Self.ringIdentityBytes
    }

    /// Ring `q` starts with `address` and `size`: its record is kept when it
    /// was left by this ring (a back-end restart), else cleared. True: kept.
    func claim(ring q: Int, address a: VhostUserVringAddress, size: UInt16) -> Bool {
        guard q >= 0, q < region.numQueues else { return false }
        let p = ringIdentity(q)
        // SAFETY: 32 bytes at p inside the header.
        let same = p.load(fromByteOffset: 26, as: UInt16.self) == UInt16(1).littleEndian
            && UInt64(littleEndian: p.load(as: UInt64.self)) == a.descriptorTable
            && UInt64(littleEndian: p.load(fromByteOffset: 8, as: UInt64.self)) == a.availableRing
            && UInt64(littleEndian: p.load(fromByteOffset: 16, as: UInt64.self)) == a.usedRing
            && UInt16(littleEndian: p.load(fromByteOffset: 24, as: UInt16.self)) == size
        if same { return true }
        region.clear(queue: q)
        p.storeBytes(of: a.descriptorTable.littleEndian, as: UInt64.self)
        p.storeBytes(of: a.availableRing.littleEndian, toByteOffset: 8, as: UInt64.self)
        p.storeBytes(of: a.usedRing.littleEndian, toByteOffset: 16, as: UInt64.self)
        p.storeBytes(of: size.littleEndian, toByteOffset: 24, as: UInt16.self)
        p.storeBytes(of: UInt16(1).littleEndian, toByteOffset: 26, as: UInt16.self)
        return false
    }

    /// Ring `q` stopped cleanly (GET_VRING_BASE answered) or the device was
    /// reset: the front-end knows where the ring is, the record says nothing.
    func clear(ring q: Int) {
        guard q >= 0, q < region.numQueues else { return }
        ringIdentity(q).storeBytes(of: UInt16(0), toByteOffset: 26, as: UInt16.self)
        region.clear(queue: q)
    }
}
