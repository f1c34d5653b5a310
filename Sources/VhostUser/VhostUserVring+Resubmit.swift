import Virtio

// Resubmitting requests still in flight after a reconnect (INFLIGHT_SHMFD,
// vhost-user.rst "Inflight I/O tracking"). The heads come from the inflight
// region in fetch order; each chain is walked straight from the descriptor
// table with `SplitQueue.walkChain(head:into:)` (same rule checks as
// `popAvail`), leaving the avail ring alone: `start` already resumed
// fetching after the resubmitted heads. Packed rings resubmit from the
// descriptor copies their record keeps (`InflightPackedQueue`).

extension VhostUserVring {
    /// Walks and hands to `device` every head left in flight by the previous
    /// connection, in fetch order. Returns how many were handed out.
    func resubmit(device: VhostUserDevice, queue q: SplitQueue) -> Int {
        let heads = resubmitHeads
        resubmitHeads = []
        var n = 0
        for head in heads {
            guard let req = pool.popLast() else {
                // Cannot happen (pool holds `size` requests, heads are distinct
                // and < size); count the rest rather than crash.
                counters.badRequests += 1
                continue
            }
            var bad = false
            do {
                try q.walkChain(head: head, into: req.chain)
            } catch {
                switch error {
                case .badRequest where head < size:
                    bad = true
                case .badRequest, .queueBroken:
                    // No descriptor to complete (head out of range) or ring dead.
                    counters.badRequests += 1
                    pool.append(req)
                    continue
                }
            }
            // Re-mark with a fresh counter (same head), then hand out.
            guard Int(head) < headInUse.count, !headInUse[Int(head)] else {
                // The same head twice in the inflight region: resubmit it once.
                counters.badRequests += 1
                pool.append(req)
                continue
            }
            inflight?.markPopped(head: req.chain.head, counter: inflightCounter)
            handResubmitted(req, bad: bad, to: device)
            n += 1
        }
        return n
    }

    /// Sends a resubmitted request out (its inflight record already renewed):
    /// to `device`, or completed at once with nothing written when its chain
    /// broke a rule.
    private func handResubmitted(_ req: VhostUserQueueRequest, bad: Bool, to device: VhostUserDevice) {
        headInUse[Int(req.chain.head)] = true    // < size: checked by the callers
        inflightCounter &+= 1
        req.generation = generation
        req.isOutstanding = true
        outstanding += 1
        counters.resubmitted += 1
        if bad {
            counters.badRequests += 1
            complete(req, writtenLength: 0)
        } else {
            counters.requests += 1
            device.handle(req)
        }
    }
}

extension VhostUserVring {
    /// Packed rings: rebuilds each chain left in flight from the descriptor
    /// copies in the inflight record (the ring slots may hold used
    /// descriptors by now) and hands it to `device`, in fetch order. A chain
    /// whose buffer id the ring cannot take breaks the ring like a pop would
    /// (`headIsFree`). Returns how many were handed out.
    func resubmit(device: VhostUserDevice, queue q: PackedQueue) -> Int {
        let chains = resubmitPacked
        resubmitPacked = []
        var n = 0
        for (entry, copies) in chains {
            guard let req = pool.popLast() else {
                counters.badRequests += 1
                continue
            }
            var bad = false
            do {
                try q.rebuildChain(copies, into: req.chain)
            } catch {
                bad = true
            }
            guard headIsFree(req) else {
                pool.append(req)
                return n
            }
            req.inflightEntry = entry
            packedInflight?.recount(entry: entry, counter: inflightCounter)
            handResubmitted(req, bad: bad, to: device)
            n += 1
        }
        return n
    }
}
