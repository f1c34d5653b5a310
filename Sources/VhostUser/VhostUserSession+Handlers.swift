import Virtio
import VireoSys

extension VhostUserSession {
    /// Applies one validated request, sending its reply if it has one.
    func handle(_ m: VhostUserMessage, fds: ReceivedFileDescriptors) throws {
        let req = m.request
        func invalid(_ why: String) -> VhostUserProtocolError { VhostUserProtocolError(request: req, .invalid(why)) }
        func need(_ f: VhostUserProtocolFeatures, _ name: String) throws(VhostUserProtocolError) {
            guard protocolFeatures.contains(f) else { throw VhostUserProtocolError(request: req, .notNegotiated(name)) }
        }
        func ring(_ index: UInt32) throws(VhostUserProtocolError) -> VhostUserVring {
            guard Int(index) < vrings.count else {
                throw invalid("vring index \(index) out of range (device has \(vrings.count) queues)")
            }
            return vrings[Int(index)]
        }
        func fd(_ i: Int) throws(VhostUserProtocolError) -> FileDescriptor {
            guard let f = fds.take(i) else { throw invalid("missing fd \(i)") }
            return f
        }
        func eventFD(_ i: Int) throws(VhostUserProtocolError) -> SharedEventFD {
            do { return SharedEventFD(try EventFD(adopting: try fd(i))) } catch let e as VhostUserProtocolError { throw e } catch {
                throw VhostUserProtocolError(request: req, .failed("\(error)"))
            }
        }

        switch m {
        case .getFeatures:
            try channel.reply(to: req, payload: u64(offeredFeatures))
        case .setFeatures(let v):
            guard v & ~offeredFeatures == 0 else {
                throw invalid("features 0x\(String(v, radix: 16)) not a subset of offered 0x\(String(offeredFeatures, radix: 16))")
            }
            let packed = v & VirtioFeatures.ringPacked != 0
            if packed != (features & VirtioFeatures.ringPacked != 0), vrings.contains(where: \.started) {
                throw invalid("ring layout cannot change while rings run")
            }
            features = v
            try quiesced { () throws(VhostUserProtocolError) in
                for r in vrings {
                    r.packed = packed
                    r.eventIdx = v & VirtioFeatures.eventIdx != 0
                    r.rules = ChainRules(indirectAllowed: v & VirtioFeatures.indirectDesc != 0)
                    r.log = v & VhostFeature.logAll != 0 ? log : nil
                }
                // Inside the quiesce: devices keep the bits in plain fields their workers read.
                device.featuresNegotiated(v)
            }
        case .getProtocolFeatures:
            try channel.reply(to: req, payload: u64(offeredProtocolFeatures.rawValue))
        case .setProtocolFeatures(let v):
            let f = VhostUserProtocolFeatures(rawValue: v)
            guard f.isSubset(of: offeredProtocolFeatures) else {
                throw invalid("protocol features 0x\(String(v, radix: 16)) not a subset of offered \(offeredProtocolFeatures)")
            }
            protocolFeatures = f
            protocolFeaturesSet = true
        case .setOwner:
            break
        case .resetOwner, .resetDevice:
            if case .resetDevice = m { try need(.resetDevice, "RESET_DEVICE") }
            try quiesced { () throws(VhostUserProtocolError) in
                for r in vrings {
                    _ = r.stop(); r.enabled = false; r.base = 0; r.generation &+= 1
                    r.inflight = nil; r.packedInflight = nil; r.inflightRegion = nil
                }
            }
            // A reset forgets what was in flight: the next start gets its
            // region again (QEMU frees its own on reset and sends SET_INFLIGHT_FD).
            inflight = nil
            if let rec = restartRecord { for r in vrings { rec.clear(ring: r.index) } }
            restartRecord = nil
            features = 0
            status = 0
        case .setMemTable(let regions):
            var mapped: [VhostUserMappedRegion] = []
            for (i, d) in regions.enumerated() {
                mapped.append(try VhostUserMappedRegion(descriptor: d, fd: try fd(i), owner: faultOwner, request: req))
            }
            let newTable = try VhostUserMemoryTable(regions: mapped, request: req)
            try replaceTable(newTable, removed: table.mapped, added: mapped)
        case .addMemReg(let d):
            try need(.configureMemSlots, "CONFIGURE_MEM_SLOTS")
            guard table.mapped.count < options.maxMemorySlots else {
                throw invalid("all \(options.maxMemorySlots) memory slots in use")
            }
            let region = try VhostUserMappedRegion(descriptor: d, fd: try fd(0), owner: faultOwner, request: req)
            let newTable = try VhostUserMemoryTable(regions: table.mapped + [region], request: req)
            try replaceTable(newTable, removed: [], added: [region])
        case .remMemReg(let d):
            try need(.configureMemSlots, "CONFIGURE_MEM_SLOTS")
            guard let i = table.mapped.firstIndex(where: {
                $0.descriptor.guestPhysicalAddress == d.guestPhysicalAddress && $0.descriptor.size == d.size
                    && $0.descriptor.frontendVirtualAddress == d.frontendVirtualAddress
            }) else {
                throw invalid("no region at gpa 0x\(String(d.guestPhysicalAddress, radix: 16)) size 0x\(String(d.size, radix: 16))")
            }
            var rest = table.mapped
            let gone = rest.remove(at: i)
            let newTable = try VhostUserMemoryTable(regions: rest, request: req)
            try replaceTable(newTable, removed: [gone], added: [])
        case .getMaxMemSlots:
            try need(.configureMemSlots, "CONFIGURE_MEM_SLOTS")
            try channel.reply(to: req, payload: u64(UInt64(options.maxMemorySlots)))
        case .setLogBase(let d):
            try need(.logSHMFD, "LOG_SHMFD")
            let newLog: DirtyLog
            do { newLog = try DirtyLog(fd: try fd(0), offset: d.mmapOffset, size: d.mmapSize, peerOwner: faultOwner) } catch let e as VhostUserProtocolError { throw e } catch {
                throw VhostUserProtocolError(request: req, .failed("\(error)"))
            }
            log = newLog
            let on = features & VhostFeature.logAll != 0
            try quiesced { () throws(VhostUserProtocolError) in
                for r in vrings { r.log = on ? newLog : nil }
            }
            try channel.reply(to: req, payload: u64(0))
        case .setLogFD:
            try need(.logSHMFD, "LOG_SHMFD")
            logFD = try fd(0)
        case .setVringNum(let s):
            let r = try ring(s.index)
            guard s.num > 0, s.num <= UInt32(r.maxSize), s.num & (s.num - 1) == 0 else {
                throw invalid("ring \(s.index) size \(s.num) must be a power of 2 in 1...\(r.maxSize)")
            }
            guard !r.started else { throw invalid("ring \(s.index) is running") }
            r.size = UInt16(s.num)
        case .setVringAddr(let a):
            let r = try ring(a.index)
            try checkRingAddress(a, size: r.size)
            try quiesced { () throws(VhostUserProtocolError) in
                r.address = a
                r.logUsedGPA = a.flags & VhostUserVringAddress.flagLog != 0 ? a.logGuestAddress : nil
                if r.started, r.deviceQueue != nil {
                    // Re-resolve in place (e.g. QEMU re-sends addresses with LOG at migration start).
                    r.base = r.currentBase
                    // Without the inflight views (no second recovery), keeping
                    // what recovery left to resubmit.
                    let had = (r.inflight, r.packedInflight, r.resubmitHeads, r.resubmitPacked)
                    r.inflight = nil
                    r.packedInflight = nil
                    defer { (r.inflight, r.packedInflight, r.resubmitHeads, r.resubmitPacked) = had }
                    try r.start(memory: table.memory)
                }
            }
        case .setVringBase(let s):
            let r = try ring(s.index)
            guard !r.started else { throw invalid("ring \(s.index) is running") }
            // vhost-user.rst: split rings use bits 0-15 (16-31 reserved, zero);
            // packed rings carry avail slot | wrap << 15 in bits 0-15 and used
            // slot | wrap << 15 in bits 16-31 (slots checked against the size at start).
            guard r.packed || s.num <= 0xffff else { throw invalid("ring \(s.index) base \(s.num) exceeds 16 bits") }
            r.base = s.num
        case .getVringBase(let s):
            let r = try ring(s.index)
            let base = try quiesced { () throws(VhostUserProtocolError) in r.stop() }
            // A clean stop: the front-end now knows where the ring is.
            restartRecord?.clear(ring: r.index)
            var out: [UInt8] = []
            VhostUserVringState(index: s.index, num: base).encode(into: &out)
            try channel.reply(to: req, payload: out)
        case .setVringKick(let f):
            let r = try ring(f.index)
            let kick = f.noFD ? nil : try eventFD(0)
            // vhost-user.rst "Ring states": without protocol features a ring starts enabled.
            let autoEnable = !protocolFeaturesNegotiated
            try quiesced { () throws(VhostUserProtocolError) in
                if r.started { r.base = r.stop() }
                r.kick = kick
                r.kickNoFD = f.noFD
                openRestartRecord(for: r)
                try attachInflight(to: r)
                r.log = features & VhostFeature.logAll != 0 ? log : nil
                if autoEnable { r.enabled = true }
                try r.start(memory: table.memory)
                if restartRecord != nil { reportRestartRecord(r) }    // before the worker resubmits
            }
            // Kick once in case the driver queued requests while we were away.
            r.kick?.signal()
        case .setVringCall(let f):
            let r = try ring(f.index)
            let call = f.noFD ? nil : try eventFD(0)
            // No quiesce: the slot's handshake with the worker (VringEventSlot)
            // guarantees no call reaches the old fd once this returns.
            r.call.replace(call)
            // A ring started before its call was set still owes the start's
            // call (VhostUserVring.startCallOwed): wake its worker to pay it
            // (our own eventfd: the ring may not be enabled, so not its kick).
            if r.started, call != nil { r.worker?.nudge() }
        case .setVringErr(let f):
            let r = try ring(f.index)
            let err = f.noFD ? nil : try eventFD(0)
            r.err.replace(err)
        case .getQueueNum:
            try channel.reply(to: req, payload: u64(UInt64(vrings.count)))
        case .setVringEnable(let s):
            guard protocolFeaturesNegotiated else {
                throw VhostUserProtocolError(request: req, .notNegotiated("VHOST_USER_F_PROTOCOL_FEATURES"))
            }
            let r = try ring(s.index)
            try quiesced { () throws(VhostUserProtocolError) in r.enabled = s.num == 1 }
            if s.num == 1 { r.kick?.signal() }
        case .sendRARP(let mac):
            try need(.rarp, "RARP")
            device.sendRARP(mac: mac)
        case .netSetMTU(let mtu):
            try need(.mtu, "MTU")
            try device.setMTU(mtu)
        case .setBackendReqFD:
            try need(.backendReq, "BACKEND_REQ")
            let ch = VhostUserChannel(socket: UnixSocket(fd: try fd(0)))
            backendChannel.withLock { $0 = ch }
        case .getConfig(let c):
            try need(.config, "CONFIG")
            let space = device.configSpace()
            // The front-end may ask for its own (larger) idea of the config
            // struct: bytes past the device's space read as zero.
            var data = [UInt8](repeating: 0, count: c.data.count)
            let start = Int(c.offset)
            if start < space.count {
                let n = min(space.count - start, data.count)
                data.replaceSubrange(0..<n, with: space[start..<(start + n)])
            }
            var out: [UInt8] = []
            VhostUserConfigPayload(offset: c.offset, flags: c.flags, data: data).encode(into: &out)
            try channel.reply(to: req, payload: out)
        case .setConfig(let c):
            try need(.config, "CONFIG")
            try device.writeConfig(offset: c.offset, data: c.data)
        case .getInflightFD(let d):
            try need(.inflightSHMFD, "INFLIGHT_SHMFD")
            try checkInflightShape(d)
            let region: InflightRegion
            do {
                region = try InflightRegion(numQueues: Int(d.numQueues), queueSize: d.queueSize,
                                            packed: features & VirtioFeatures.ringPacked != 0)
            } catch {
                throw VhostUserProtocolError(request: req, .failed("\(error)"))
            }
            try attachInflight(region, request: req)
            var out: [UInt8] = []
            VhostUserInflightDescriptor(mmapSize: UInt64(region.size), mmapOffset: 0, numQueues: d.numQueues,
                                        queueSize: d.queueSize).encode(into: &out)
            try channel.reply(to: req, payload: out, fds: [region.fd.rawValue])
        case .setInflightFD(let d):
            try need(.inflightSHMFD, "INFLIGHT_SHMFD")
            try checkInflightShape(d)
            let region = try InflightRegion(adopting: try fd(0), offset: d.mmapOffset, size: d.mmapSize,
                                            numQueues: Int(d.numQueues), queueSize: d.queueSize,
                                            packed: features & VirtioFeatures.ringPacked != 0,
                                            peerOwner: faultOwner)
            try attachInflight(region, request: req)
        case .setStatus(let v):
            try need(.status, "STATUS")
            guard v <= 0xff else { throw invalid("status 0x\(String(v, radix: 16)) exceeds 8 bits") }
            status = v
        case .getStatus:
            try need(.status, "STATUS")
            try channel.reply(to: req, payload: u64(status))
        }
    }

    /// Rings must lie inside the memory table (front-end virtual addresses).
    private func checkRingAddress(_ a: VhostUserVringAddress, size: UInt16) throws(VhostUserProtocolError) {
        let mem = table.memory
        let n = size == 0 ? UInt16(1) : size
        // §2.8.10 (packed): descriptor ring, then driver / device event suppression areas.
        let areas: [(String, UInt64, Int)] = features & VirtioFeatures.ringPacked != 0 ? [
            ("descriptor ring", a.descriptorTable, RingLayout.packedRingBytes(size: n)),
            ("driver event area", a.availableRing, RingLayout.packedEventBytes),
            ("device event area", a.usedRing, RingLayout.packedEventBytes),
        ] : [
            ("descriptor table", a.descriptorTable, RingLayout.splitDescriptorTableBytes(size: n)),
            ("available ring", a.availableRing, RingLayout.splitAvailRingBytes(size: n)),
            ("used ring", a.usedRing, RingLayout.splitUsedRingBytes(size: n)),
        ]
        for (name, addr, len) in areas where mem.hostPointer(userAddr: addr, length: UInt64(len)) == nil {
            throw VhostUserProtocolError(request: .setVringAddr, .invalid(
                "ring \(a.index) \(name) at 0x\(String(addr, radix: 16)) (\(len) bytes) is outside guest memory"))
        }
        if a.flags & VhostUserVringAddress.flagLog != 0 {
            let (_, o) = a.logGuestAddress.addingReportingOverflow(UInt64(RingLayout.splitUsedRingBytes(size: n)))
            guard !o else { throw VhostUserProtocolError(request: .setVringAddr, .invalid("ring \(a.index) log address overflows")) }
        }
    }

    private func checkInflightShape(_ d: VhostUserInflightDescriptor) throws(VhostUserProtocolError) {
        let req: VhostUserRequest = d.mmapSize == 0 ? .getInflightFD : .setInflightFD
        guard d.numQueues > 0, Int(d.numQueues) <= vrings.count else {
            throw VhostUserProtocolError(request: req, .invalid("num_queues \(d.numQueues) not in 1...\(vrings.count)"))
        }
        let q = d.queueSize
        guard q > 0, q <= device.maxQueueSize, q & (q - 1) == 0 else {
            throw VhostUserProtocolError(request: req, .invalid("queue_size \(q) must be a power of 2 in 1...\(device.maxQueueSize)"))
        }
    }

    private func attachInflight(_ region: InflightRegion, request: VhostUserRequest) throws(VhostUserProtocolError) {
        // A running ring writes its record through a view of the current
        // region's mapping: replacing (and unmapping) it under the ring would
        // make the worker write to freed memory. Front-ends send the region
        // before they start the rings (vhost-user.rst "Inflight I/O tracking").
        if let r = vrings.first(where: \.started) {
            throw VhostUserProtocolError(request: request, .invalid(
                "inflight region sent while ring \(r.index) runs (stop the rings with GET_VRING_BASE first)"))
        }
        inflight = region
        restartRecord = nil    // the front-end keeps the record from now on
        try quiesced { () throws(VhostUserProtocolError) in
            for r in vrings where !r.started {
                r.inflight = nil
                r.packedInflight = nil
                r.inflightRegion = nil
            }
        }
    }

    /// (Quiesced) Gives ring `r` its view of the inflight region as it starts:
    /// split or packed, as the region was laid out (the features at
    /// GET_INFLIGHT_FD / SET_INFLIGHT_FD), which must be the ring's layout.
    /// (A packed view's private free list is rebuilt by the ring's start.)
    private func attachInflight(to r: VhostUserVring) throws(VhostUserProtocolError) {
        r.inflightIsOwn = restartRecord != nil
        r.inflightRegion = inflight
        guard let region = inflight else {
            r.inflight = nil
            r.packedInflight = nil
            return
        }
        guard region.packed == r.packed else {
            throw VhostUserProtocolError(request: .setVringKick, .invalid(
                "ring \(r.index) is \(r.packed ? "packed" : "split") but the inflight region was laid out \(region.packed ? "packed" : "split") (features changed after GET_INFLIGHT_FD)"))
        }
        if r.packed {
            r.inflight = nil
            r.packedInflight = region.packedQueue(r.index)
        } else {
            r.packedInflight = nil
            r.inflight = region.splitQueue(r.index)
        }
    }

    /// Swaps the memory table with every queue quiesced: the device hears
    /// about removed regions before they are unmapped and about new ones
    /// before any queue can use them.
    private func replaceTable(_ newTable: VhostUserMemoryTable, removed: [VhostUserMappedRegion],
                              added: [VhostUserMappedRegion]) throws(VhostUserProtocolError) {
        var failure: VhostUserProtocolError?
        try quiesced { () throws(VhostUserProtocolError) in
            if !removed.isEmpty { device.memoryRegionsRemoved(removed.map(\.region)) }
            table = newTable
            if !added.isEmpty { device.memoryRegionsAdded(added.map(\.region)) }
            for r in vrings {
                do throws(VhostUserProtocolError) { try r.replaceMemory(newTable.memory) } catch { failure = error }
            }
        }
        // A ring left unmapped by the new table is stopped; the front-end
        // must re-send its addresses (not a protocol error by itself).
        if let failure { logger.warning("vhost-user: \(failure)") }
    }
}
