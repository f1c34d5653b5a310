import Virtio

// Checks a split ring's own restart record (`RestartRecord`) must pass before
// its chains are resubmitted. A front-end's region is trusted to belong to
// the ring (QEMU frees it when the device resets); the back-end's own file
// may be from before a guest reset that happened while no back-end ran, with
// the new rings at the same addresses, so it must also agree with the ring.

extension VhostUserVring {
    /// Before recovery: the record's used index is the ring's used.idx, or
    /// one behind it (a back-end that died after publishing a used entry and
    /// before the record caught up: `postPut` clears the mark, then stores
    /// the index, and either store may be the last). Nil: fits.
    static func ownRecordMismatch(_ record: InflightSplitQueue, queue q: SplitQueue) -> String? {
        guard record.version != 0 else { return nil }
        let kept = UInt16(littleEndian: record.usedIndex)
        if q.usedIdx == kept || q.usedIdx == kept &+ 1 { return nil }
        return "used index \(q.usedIdx) in guest memory, \(kept) in the record"
    }

    /// After recovery: the chains the record has in flight are no more than
    /// the driver made available past used.idx (virtio 1.x §2.7.6), and when
    /// nothing was ever used (every chain taken is still out, taken from
    /// avail positions 0 on), they are exactly the heads at those positions.
    static func ownRecordMismatch(heads: [UInt16], queue q: SplitQueue) -> String? {
        guard !heads.isEmpty else { return nil }
        // The record has entries for the device's largest ring; this one may be smaller.
        if let h = heads.first(where: { $0 >= q.size }) { return "head \(h) in flight, the ring has \(q.size) descriptors" }
        let pending = q.peekAvailIndex() &- q.usedIdx
        guard pending <= q.size, heads.count <= Int(pending) else {
            return "\(heads.count) chain(s) in flight, the driver has \(pending) available past used index \(q.usedIdx)"
        }
        if q.usedIdx == 0 {
            var offered = [Bool](repeating: false, count: Int(q.size))
            for p in 0..<UInt16(heads.count) {
                let h = q.peekAvailHead(at: p)
                if h < q.size { offered[Int(h)] = true }
            }
            guard heads.allSatisfy({ $0 < q.size && offered[Int($0)] }) else {
                return "the chains in flight are not the heads the driver made available first"
            }
        }
        return nil
    }
}
