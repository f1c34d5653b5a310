// The descriptor chain walker shared by the split and packed queues: the
// per-descriptor rules (ordering, length, translation) and indirect tables.
// Ring-specific traversal (next indices vs. consecutive ring slots) lives in
// SplitQueue / PackedQueue and calls into these.

extension Chain {
    /// Appends one descriptor's buffer `[addr, addr+len)`, translated through
    /// `memory`, enforcing the framing rules. Zero-length buffers add nothing.
    @inline(__always)
    func appendBuffer(addr: UInt64, len: UInt32, writable: Bool, memory: GuestMemory) throws(BadRequestReason) {
        if writable {
            // virtio 1.x §2.7.5.2 / §2.8.13: total chain length must fit in
            // 32 bits ("MUST NOT add a descriptor chain longer than 2^32 bytes").
            sawWritable = true
            let (w, o) = writableBytes.addingReportingOverflow(len)
            guard !o, readableBytes <= UInt32.max - w else { throw .totalLengthOverflow }
            writableBytes = w
        } else {
            // virtio 1.x §2.7.4.2: "The driver MUST place any device-writable
            // descriptor elements after any device-readable descriptor elements."
            guard !sawWritable else { throw .readableAfterWritable }
            let (r, o) = readableBytes.addingReportingOverflow(len)
            guard !o else { throw .totalLengthOverflow }
            readableBytes = r
        }
        if len == 0 { return }
        // virtio 1.x §2.7.5: the buffer is [addr, addr+len) in guest-physical
        // space; reject a range that wraps past 2^64.
        guard addr <= UInt64.max - UInt64(len - 1) else { throw .addressOverflow }
        let regions = memory.regions
        guard var i = memory.regionIndex(gpa: addr) else { throw .unmappedBuffer }
        var a = addr
        var remaining = UInt64(len)
        while true {
            let r = regions[i]
            let offset = a - r.guestPhysAddr          // < r.size (lookup / adjacency)
            let take = min(r.size - offset, remaining)
            guard count < capacity else { throw .tooManySegments }
            // SAFETY: offset < r.size and offset + take <= r.size, so the
            // segment lies inside the region's host mapping.
            storage[count] = Segment(
                hostPointer: r.hostAddress.advanced(by: Int(offset)),
                guestAddr: a, length: UInt32(take), isWritable: writable, region: UInt16(truncatingIfNeeded: i))
            count += 1
            if !writable { readableSegmentCount = count }
            remaining -= take
            if remaining == 0 { return }
            a += take
            // A buffer crossing two regions continues only in an adjacent one.
            i += 1
            guard i < regions.count, regions[i].guestPhysAddr == a else { throw .unmappedBuffer }
        }
    }

    /// Validates an indirect descriptor's table and returns its host pointer
    /// and number of entries.
    @inline(__always)
    static func indirectTable(
        addr: UInt64, len: UInt32, rules: ChainRules, memory: GuestMemory
    ) throws(BadRequestReason) -> (UnsafeRawPointer, Int) {
        // virtio 1.x §2.7.5.3.1 / §2.8.19: INDIRECT only when VIRTIO_F_INDIRECT_DESC was negotiated.
        guard rules.indirectAllowed else { throw .indirectNotNegotiated }
        // virtio 1.x §2.7.5.3: the table holds len/16 descriptors; a length
        // of 0 or not a multiple of 16 describes no valid table.
        guard len != 0, len % UInt32(RingLayout.descriptorSize) == 0 else { throw .indirectLengthInvalid }
        let entries = Int(len) / RingLayout.descriptorSize
        // Bound the work per request (the spec bounds chains by the queue size, §2.7.5.3.1).
        guard entries <= rules.maxIndirectDescriptors else { throw .indirectTooLarge }
        guard addr <= UInt64.max - UInt64(len - 1) else { throw .addressOverflow }
        // The table is read in place, so it must be contiguous in one region.
        guard let p = memory.hostPointer(gpa: addr, length: UInt64(len)) else { throw .indirectTableUnmapped }
        return (UnsafeRawPointer(p), entries)
    }

    /// Walks a split-format descriptor chain starting at `head` in `table` of
    /// `size` entries (virtio 1.x §2.7.5), following one indirect table.
    /// `head` must already be below `size`.
    func walkSplit(
        table: UnsafeRawPointer, size: Int, head: Int, rules: ChainRules, memory: GuestMemory
    ) throws(BadRequestReason) {
        reset()
        var table = table
        var tableSize = size
        var index = head
        var steps = 0
        var inIndirect = false
        while true {
            // virtio 1.x §2.7.5.2: a chain is at most Queue Size descriptors
            // (and an indirect chain at most its table); more means a loop.
            steps += 1
            guard steps <= tableSize else { throw .chainTooLong }
            // SAFETY: index < tableSize (head checked by the caller, next below),
            // and the table spans tableSize * 16 mapped bytes.
            let d = table + index &* RingLayout.descriptorSize
            let addr = d.le64(0), len = d.le32(8), flags = d.le16(12), next = d.le16(14)
            if flags & RingLayout.descFlagIndirect != 0 {
                // virtio 1.x §2.7.5.3.1: "MUST NOT set the VIRTQ_DESC_F_INDIRECT
                // flag within an indirect descriptor" (one table per descriptor).
                guard !inIndirect else { throw .nestedIndirect }
                // virtio 1.x §2.7.5.3.1: "MUST NOT set both VIRTQ_DESC_F_INDIRECT
                // and VIRTQ_DESC_F_NEXT"; §2.7.5.3.2: zero or more direct
                // descriptors may precede the single indirect one, which ends
                // the main chain. Its WRITE flag is ignored (§2.7.5.3.2).
                guard flags & RingLayout.descFlagNext == 0 else { throw .indirectWithNext }
                let (t, n) = try Chain.indirectTable(addr: addr, len: len, rules: rules, memory: memory)
                table = t
                tableSize = n
                index = 0
                steps = 0
                inIndirect = true
                continue
            }
            try appendBuffer(addr: addr, len: len, writable: flags & RingLayout.descFlagWrite != 0, memory: memory)
            if flags & RingLayout.descFlagNext == 0 { return }
            // virtio 1.x §2.7.5.2: `next` indexes the same table; it must be
            // below the queue size (indirect: below the table's entry count).
            guard Int(next) < tableSize else { throw .nextOutOfRange }
            index = Int(next)
        }
    }

    /// Appends one packed-ring descriptor (virtio 1.x §2.8): its buffer, or
    /// the buffers of the indirect table it points at.
    @inline(__always)
    func appendPackedDescriptor(
        addr: UInt64, len: UInt32, flags: UInt16, rules: ChainRules, memory: GuestMemory
    ) throws(BadRequestReason) {
        if flags & RingLayout.descFlagIndirect != 0 {
            // virtio 1.x §2.8.19: INDIRECT and NEXT together are forbidden.
            guard flags & RingLayout.descFlagNext == 0 else { throw .indirectWithNext }
            try walkPackedIndirect(addr: addr, len: len, rules: rules, memory: memory)
        } else {
            try appendBuffer(addr: addr, len: len, writable: flags & RingLayout.descFlagWrite != 0, memory: memory)
        }
    }

    /// Appends the buffers of a packed-format indirect table (virtio 1.x
    /// §2.8.7): entries are consecutive, only WRITE is meaningful.
    func walkPackedIndirect(addr: UInt64, len: UInt32, rules: ChainRules, memory: GuestMemory) throws(BadRequestReason) {
        let (t, n) = try Chain.indirectTable(addr: addr, len: len, rules: rules, memory: memory)
        for i in 0..<n {
            // SAFETY: i < n entries of 16 bytes, all inside the checked table.
            let d = t + i &* RingLayout.descriptorSize
            let flags = d.le16(14)
            // virtio 1.x §2.8.19: "MUST NOT set the VIRTQ_DESC_F_INDIRECT flag
            // within an indirect descriptor" — rejected rather than ignored.
            guard flags & RingLayout.descFlagIndirect == 0 else { throw .nestedIndirect }
            try appendBuffer(addr: d.le64(0), len: d.le32(8), writable: flags & RingLayout.descFlagWrite != 0, memory: memory)
        }
    }
}
