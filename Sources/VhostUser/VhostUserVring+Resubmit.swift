import Virtio
import VireoSys

// Resubmitting requests still in flight after a reconnect (INFLIGHT_SHMFD).
//
// `Virtio.SplitQueue` walks a chain only as part of `popAvail`; it has no
// "walk the chain at head H" entry point. Until it does, the chains are
// walked by a throw-away SplitQueue whose avail ring is private scratch
// memory listing exactly the heads to resubmit, and whose descriptor table
// is the real one. The scratch region is appended to the memory table above
// every guest region; a chain whose buffers point into it is rejected.
// (Requested from the Virtio owner: `SplitQueue.walkChain(head:into:)`.)

extension VhostUserVring {
    /// Walks and hands to `device` every head left in flight by the previous
    /// connection, in fetch order. Returns how many were handed out.
    func resubmit(device: VhostUserDevice, queue q: SplitQueue) -> Int {
        let heads = resubmitHeads
        resubmitHeads = []
        guard let address, !heads.isEmpty else { return 0 }
        let availBytes = (RingLayout.splitAvailRingBytes(size: size) + 3) & ~3
        let scratchBytes = (availBytes + RingLayout.splitUsedRingBytes(size: size) + pageSize - 1) / pageSize * pageSize
        var topGPA: UInt64 = 0, topUVA: UInt64 = 0
        for r in memory.regions {
            topGPA = max(topGPA, r.guestPhysAddr &+ r.size)
            topUVA = max(topUVA, r.userAddr &+ r.size)
        }
        let page = UInt64(pageSize)
        let (gpaUp, o1) = topGPA.addingReportingOverflow(page - 1)
        let (uvaUp, o2) = topUVA.addingReportingOverflow(page - 1)
        let scratchGPA = gpaUp & ~(page - 1), scratchUVA = uvaUp & ~(page - 1)
        let (_, o3) = scratchGPA.addingReportingOverflow(UInt64(scratchBytes))
        let (_, o4) = scratchUVA.addingReportingOverflow(UInt64(scratchBytes))
        guard !o1, !o2, !o3, !o4, let scratch = try? MemoryMapping(anonymous: scratchBytes) else {
            counters.badRequests += UInt64(heads.count)
            return 0
        }
        // SAFETY: the avail ring (flags, idx, ring[size]) fits in availBytes < scratchBytes.
        let avail = scratch.baseAddress
        avail.storeBytes(of: UInt16(0), toByteOffset: 0, as: UInt16.self)
        for (i, h) in heads.enumerated() {
            avail.storeBytes(of: h.littleEndian, toByteOffset: 4 + 2 * i, as: UInt16.self)
        }
        avail.storeBytes(of: UInt16(truncatingIfNeeded: heads.count).littleEndian, toByteOffset: 2, as: UInt16.self)
        let region = GuestMemory.Region(guestPhysAddr: scratchGPA, size: UInt64(scratchBytes),
                                        userAddr: scratchUVA, hostAddress: scratch.baseAddress)
        guard let mem = try? GuestMemory(regions: memory.regions + [region]),
              let walker = try? SplitQueue(
                size: size,
                addresses: RingAddresses(descriptors: address.descriptorTable, driverArea: scratchUVA,
                                         deviceArea: scratchUVA + UInt64(availBytes), space: .frontendVirtual),
                memory: mem, eventIdx: false, rules: rules, lastAvailIdx: 0, usedIdx: 0)
        else {
            counters.badRequests += UInt64(heads.count)
            return 0
        }
        var n = 0
        for _ in heads {
            guard let req = pool.popLast() else { break }
            var bad = false
            do {
                guard try walker.popAvail(into: req.chain) else { pool.append(req); break }
            } catch {
                guard case .badRequest = error else { pool.append(req); break }
                bad = true
            }
            for s in req.chain.segments where s.guestAddr >= scratchGPA { bad = true }
            // Re-mark with a fresh counter (same head), then hand out.
            req.generation = generation
            req.isOutstanding = true
            outstanding += 1
            counters.resubmitted += 1
            inflight?.markPopped(head: req.chain.head, counter: inflightCounter)
            inflightCounter &+= 1
            n += 1
            if bad {
                counters.badRequests += 1
                complete(req, writtenLength: 0)
            } else {
                counters.requests += 1
                device.handle(req)
            }
        }
        _ = q
        return n
    }
}
