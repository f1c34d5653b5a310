import VireoFabric
import VireoSys
import VireoTargetCore
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

extension PacketNetwork {
    /// A device completion for port `p` (matched by index and generation).
    @inline(__always)
    package func completed(_ c: Completion, port p: PacketPort, now: UInt64) {
        let kind = WorkID.kind(c.wrId), index = WorkID.index(c.wrId)
        if kind == WorkID.packetSend, index >= 0, index < p.sendSlots, p.sendRefs[index] != PacketPort.noRef {
            // Done or flushed, the SEND no longer reads the ingress buffer it forwarded.
            released(p.sendRefs[index], now: now)
            p.sendRefs[index] = PacketPort.noRef
            p.forwardsInFlight -= 1
            if p.isDraining && p.forwardsInFlight == 0 { retirePending = true }
        }
        if p.isDraining { return }
        guard c.isSuccess else {
            if c.status == .flushed { p.drop("disconnected") } else {
                p.drop("work completion failed: \(c.status)")
            }
            retireDraining()
            return
        }
        p.liveness.heard()
        switch kind {
        case WorkID.probe:
            p.liveness.probeAnswered()
            p.sendQueueFree += 1
        case WorkID.packetSend:
            guard index < p.sendSlots else { return }
            p.freeSends.push(index)
            p.sendQueueFree += 1
        case WorkID.packetCredit:
            p.sendQueueFree += 1
        case WorkID.handshake:
            p.sendQueueFree += 1
            if let r = p.handshake.refused {
                p.drop("authenticationRefused (\(r.reason)): \(r.message)")
                retireDraining()
            }
        case WorkID.packetReceive:
            guard index < p.receiveCount else { return }
            guard p.handshake.isServing else { return hello(p, index: index, byteCount: Int(c.byteLength), now: now) }
            guard c.hasImmediate, let imm = PacketImmediate(rawValue: c.immediate) else {
                p.drop("protocol error: a SEND without a valid packet immediate")
                retireDraining()
                return
            }
            p.grant(imm.credits)
            if imm.kind == .credit {
                p.repost(index, returnsCredit: false, now: now)
                markDirty(p)
                return
            }
            received(p, index: index, byteCount: Int(c.byteLength), now: now)
        default:
            return
        }
    }

    /// Port `p`'s first message, which must be the handshake's hello (`ConnectionHandshake`);
    /// after a refused hello the port only waits for its refusal to be written.
    private func hello(_ p: PacketPort, index: Int, byteCount: Int, now: UInt64) {
        guard p.handshake.awaitingHello else { return }
        let step = p.handshake.hello(p.receiveBuffer(index), count: byteCount, batch: p.sendBatch,
                                     wrId: p.workID(WorkID.handshake, 0))
        switch step {
        case .broken(let why):
            logger.warning("handshake from \(p.peer) (queue \(p.queueIndex)) on network \(name): \(why)")
            totals.handshake(accepted: false)
            p.drop("handshakeFailed: \(why)")
            return retireDraining()
        case .accepted(let host):
            totals.handshake(accepted: true)
            logger.info("\(p.peer) (queue \(p.queueIndex)) on network \(name): host \(host) authenticated")
        case .refused(_, let message):
            totals.handshake(accepted: false)
            logger.notice("refused \(p.peer) (queue \(p.queueIndex)) on network \(name): \(message)")
        }
        p.sendQueueFree -= 1
        p.repost(index, returnsCredit: false, now: now)
        markDirty(p)
    }

    /// A frame from port `p` in receive buffer `index`: validate, switch, repost.
    @inline(__always)
    private func received(_ p: PacketPort, index: Int, byteCount: Int, now: UInt64) {
        let frame = p.receiveBuffer(index)
        p.counters.received(bytes: byteCount)
        totals.received(bytes: byteCount)
        switch PacketFrame.validate(frame, byteCount: byteCount, maxFrame: maxFrame) {
        case .failure(let reason):
            count(PortDrop(reason), on: p.counters)
        case .success(let summary):
            // No offload is negotiated: nothing of the sender's header (DATA_VALID, csum_*, gso_*,
            // hdr_len, num_buffers) may reach another port. The buffer is ours until reposted below.
            memset(frame, 0, Wire.netHeaderSize)
            let ingress = groups.group(ofSlot: p.tableIndex)
            switch switching.route(summary, ingress: ingress, now: now) {
            case .port(let dst):
                // Held for the destination's credit: the buffer goes back when the frame leaves.
                if deliver(frame, byteCount: byteCount, to: dst, source: (p, index), mayHold: true, now: now) { return }
            case .flood: flood(frame, byteCount: byteCount, from: ingress, source: (p, index))
            case .dropped(let reason): count(reason, on: p.counters)
            }
        }
        releaseIfUnreferenced(p, index: index, now: now)
    }

    /// Reposts `p`'s receive buffer `index` (its credit returns to the sender) unless SENDs
    /// forwarding its frame still read it; the last of them reposts it (`released`).
    @inline(__always)
    private func releaseIfUnreferenced(_ p: PacketPort, index: Int, now: UInt64) {
        guard p.forwardRefs[index] == 0, !p.isDraining else { return }
        p.repost(index, returnsCredit: true, now: now)
        markDirty(p)
    }

    /// A forwarding SEND (`ref`: the ingress buffer it read) is done: the buffer loses a
    /// reference and is reposted after its last.
    @inline(__always)
    func released(_ ref: UInt64, now: UInt64) {
        let h = HeldFrame(ref)
        // The ingress port is not retired while forwards from it are in flight.
        guard let src = ingress(of: h), src.forwardRefs[h.index] > 0 else { return }
        src.forwardRefs[h.index] -= 1
        src.outstandingForwards -= 1
        if src.isDraining {
            if src.outstandingForwards == 0 { retirePending = true }
            return
        }
        releaseIfUnreferenced(src, index: h.index, now: now)
    }

    /// A frame read from the TAP uplink (already behind a zero header in the TAP buffer).
    @inline(__always)
    func fromTap(byteCount: Int, now: UInt64) {
        let frame = tapBuffer
        totals.received(bytes: byteCount)
        switch PacketFrame.validate(frame, byteCount: byteCount, maxFrame: maxFrame) {
        case .failure(let reason):
            count(PortDrop(reason), on: nil)
        case .success(let summary):
            switch switching.route(summary, ingress: tapPort, now: now, checkAllowList: false) {
            case .port(let dst): _ = deliver(frame, byteCount: byteCount, to: dst, source: nil, mayHold: false, now: now)
            case .flood: flood(frame, byteCount: byteCount, from: tapPort, source: nil)
            case .dropped(let reason): count(reason, on: nil)
            }
        }
    }

    @inline(__always)
    private func count(_ reason: PortDrop, on port: PortCounters?) {
        port?.dropped(reason)
        totals.dropped(reason)
    }

    /// Whether connection `slot` can take a frame now (credit and a send slot, and no
    /// frame held before it: frames leave a port in the order they reached the switch).
    @inline(__always)
    private func canSend(_ slot: Int) -> Bool {
        guard let p = table[slot] else { return false }
        return p.held.isEmpty && hasRoom(p)
    }

    /// Credit and a send slot on `p`.
    @inline(__always)
    private func hasRoom(_ p: PacketPort) -> Bool {
        !p.isDraining && p.handshake.isServing && p.credits > 0 && p.sendQueueFree > PacketPort.creditSendSlots / 2
            && !p.freeSends.isEmpty
    }

    /// Sends one frame to every switch port but `ingress` (from `source`'s receive buffer
    /// without copies, or from the TAP buffer).
    @inline(__always)
    private func flood(_ frame: UnsafeMutableRawPointer, byteCount: Int, from ingress: Int,
                       source: (port: PacketPort, index: Int)?) {
        // A flood is never held (it would pin its buffer on the slowest port): where there is
        // no credit it is dropped and counted.
        for dst in switching.ports where dst != ingress {
            _ = deliver(frame, byteCount: byteCount, to: dst, source: source, mayHold: false, now: 0)
        }
    }

    /// Sends one frame to switch port `dst` (the TAP uplink, or a group of
    /// connections: one of them, by flow hash then credit). `source`: the ingress port's
    /// receive buffer holding it (nil: the TAP buffer). Without credit, a unicast frame
    /// (`mayHold`) waits on the flow's port in its receive buffer (true: held, the caller
    /// keeps the buffer); any other is dropped and counted.
    @inline(__always)
    private func deliver(_ frame: UnsafeMutableRawPointer, byteCount: Int, to dst: Int,
                         source: (port: PacketPort, index: Int)?, mayHold: Bool, now: UInt64) -> Bool {
        if dst == tapPort {
            guard let tap else { return false }
            if tap.write(frame + Wire.netHeaderSize, count: byteCount - Wire.netHeaderSize) {
                totals.sent(bytes: byteCount)
            } else {
                count(.tapError, on: nil)
            }
            return false
        }
        guard let (chosen, preferred) = groups.pick(group: dst, hash: { PortGroups.flowHash(frame, count: byteCount) },
                                                    usable: canSend) else { return false }
        guard let c = chosen else {
            guard let q = table[preferred], !q.isDraining else { return false }
            guard mayHold, let h = source else {
                count(q.credits > 0 ? .noSendBuffer : .noCredit, on: q.counters)
                return false
            }
            guard !q.held.isFull else {
                count(.backlog, on: q.counters)
                return false
            }
            q.held.push((HeldFrame(slot: h.port.tableIndex, generation: h.port.generation, index: h.index,
                                   byteCount: byteCount), now))
            q.counters.heldFrame()
            totals.heldFrame()
            if !q.isWaiting {
                q.isWaiting = true
                waiting.append(q.tableIndex)
            }
            return true
        }
        send(frame, byteCount: byteCount, on: table[c]!, source: source)
        return false
    }

    /// Queues the SEND of a frame on `p` (the caller checked credit and slot): straight from
    /// `source`'s receive buffer when both ports share a PD (the buffer is referenced until
    /// the SEND completes), else copied into the send slot's own buffer (and counted).
    @inline(__always)
    private func send(_ frame: UnsafeMutableRawPointer, byteCount: Int, on p: PacketPort,
                      source: (port: PacketPort, index: Int)?) {
        let slot = p.freeSends.pop()!
        let local: ScatterGatherElement
        if let s = source, s.port.registrarID == p.registrarID {
            s.port.forwardRefs[s.index] += 1
            s.port.outstandingForwards += 1
            p.sendRefs[slot] = HeldFrame(slot: s.port.tableIndex, generation: s.port.generation, index: s.index,
                                         byteCount: byteCount).packed
            p.forwardsInFlight += 1
            local = s.port.receiveRegion.segment(offset: s.index * s.port.receiveStride, length: byteCount)
        } else {
            let offset = slot * p.maxFrame
            // SAFETY: byteCount ≤ maxFrame (validated) and both buffers hold maxFrame bytes per slot.
            memcpy(p.sendBase + offset, frame, byteCount)
            p.counters.copied(byteCount)
            totals.copied(byteCount)
            local = p.sendRegion.segment(offset: offset, length: byteCount)
        }
        p.sendBatch.send(wrId: p.workID(WorkID.packetSend, slot), local: local,
                         immediate: PacketImmediate.frame(credits: p.takeReturnedCredits()))
        p.credits -= 1
        p.sendQueueFree -= 1
        p.counters.sent(bytes: byteCount)
        totals.sent(bytes: byteCount)
        markDirty(p)
    }

    @inline(__always)
    func markDirty(_ p: PacketPort) {
        if !p.isDirty {
            p.isDirty = true
            dirty.append(p.tableIndex)
        }
    }

    /// The port a held or forwarded frame came in on, if it is still that connection (a slot
    /// reused by a later connection has another generation).
    @inline(__always)
    private func ingress(of h: HeldFrame) -> PacketPort? {
        guard let p = table[h.slot], p.generation == h.generation else { return nil }
        return p
    }

    /// Sends on the frames held for ports that have credit again, oldest first, and returns
    /// their buffers to the ingress ports. A frame held past the hold timeout is dropped
    /// (`stalled`: its destination's guest stopped taking frames), and one whose ingress
    /// port left is forgotten (its buffer left with it).
    @inline(__always)
    func releaseHeld(now: UInt64) {
        var i = 0
        while i < waiting.count {
            guard let q = table[waiting[i]] else { waiting.swapAt(i, waiting.count - 1); waiting.removeLast(); continue }
            while let (h, since) = q.held.peek() {
                guard let src = ingress(of: h), !src.isDraining else {
                    _ = q.held.pop()
                    continue
                }
                let stalled = now > since && now - since > holdTimeoutNanoseconds
                if !stalled && !hasRoom(q) { break }
                _ = q.held.pop()
                if stalled {
                    count(.stalled, on: q.counters)
                } else {
                    send(src.receiveBuffer(h.index), byteCount: h.byteCount, on: q, source: (src, h.index))
                }
                releaseIfUnreferenced(src, index: h.index, now: now)
            }
            if q.held.isEmpty {
                q.isWaiting = false
                waiting.swapAt(i, waiting.count - 1)
                waiting.removeLast()
            } else {
                i += 1
            }
        }
    }

    /// A port leaving with frames held for it: they are dropped (`portGone`) and their
    /// buffers go back to their ingress ports.
    func dropHeld(for q: PacketPort, now: UInt64) {
        while let (h, _) = q.held.pop() {
            count(.portGone, on: q.counters)
            guard let src = ingress(of: h), !src.isDraining else { continue }
            releaseIfUnreferenced(src, index: h.index, now: now)
        }
        if q.isWaiting {
            q.isWaiting = false
            waiting.removeAll { $0 == q.tableIndex }
        }
    }

    /// Posts every batched receive (first: credits piggybacked on sends refer to them) and send,
    /// then announces reposted buffers with credit-only messages where due.
    @inline(__always)
    package func flush(now: UInt64, force: Bool) {
        if !waiting.isEmpty { releaseHeld(now: now) }
        if retirePending { retireDraining() }
        var broken = false
        for i in dirty {
            guard let p = table[i] else { continue }
            p.isDirty = false
            do {
                try p.queuePair.post(p.receiveBatch, costs: costs)
                try p.queuePair.post(p.sendBatch, costs: costs)
            } catch {
                p.receiveBatch.reset()
                p.sendBatch.reset()
                p.drop("posting work requests failed: \(error)")
                broken = true
            }
        }
        dirty.removeAll(keepingCapacity: true)
        for g in switching.ports where g != tapPort {
            for i in groups.members(of: g) {
                guard let p = table[i], p.pendingReturn > 0, p.sendQueueFree > 0, !p.isDraining else { continue }
                let due = force || p.pendingReturn >= max(1, p.advertised / 2)
                    || now &- p.pendingSince >= Self.creditDelayNanoseconds
                guard due else { continue }
                p.sendBatch.send(wrId: p.workID(WorkID.packetCredit, 0), local: nil,
                                 immediate: PacketImmediate.credit(p.takeReturnedCredits()))
                p.sendQueueFree -= 1
                p.counters.sentCredit()
                totals.sentCredit()
                do { try p.queuePair.post(p.sendBatch, costs: costs) } catch {
                    p.sendBatch.reset()
                    p.drop("posting a credit message failed: \(error)")
                    broken = true
                }
            }
        }
        if broken { retireDraining() }
    }
}
