import Virtio

// Input: a 6-byte header, then guest memory contents.
//   byte 0: bit 0 packed ring · bit 1 INDIRECT negotiated · bit 2 EVENT_IDX
//   byte 1: queue size (split: 2^(b % 7); packed: 1 + b % 64)
//   bytes 2-3: split last avail index / packed avail state (slot | wrap << 15)
//   byte 4: virtio-blk features (bit 0 read-only, 1 flush, 2 discard, 3 write zeroes)
//   byte 5: a head for a split `walkChain` (inflight resubmission)
// The rest is copied over guest memory, region by region (A, then B, then C):
// A holds the rings at its start (split: descriptor table, avail ring, used
// ring; packed: descriptor ring, driver event, device event), so the input's
// first bytes are descriptors. Each region is its own heap allocation, so
// AddressSanitizer catches any byte used outside a region.

extension FuzzHarness {
    /// Split and packed virtqueues popping chains from fuzzed rings in heap
    /// "guest memory", each parsed as a virtio-blk request.
    public static let virtqueue = FuzzHarness(name: "virtqueue", run: VirtqueueHarness.run, seeds: VirtqueueHarness.seeds)
}

enum VirtqueueHarness {
    /// Guest-physical layout: A and B adjacent (a buffer may cross them), C apart.
    static let layout: [(gpa: UInt64, size: Int)] = [(0x1_0000, 0x2000), (0x1_2000, 0x1000), (0x8_0000, 0x1000)]
    static let userAddrBase: UInt64 = 0x7f00_0000_0000
    static let headerSize = 6
    static let capacitySectors: UInt64 = 64

    struct Layout {
        var desc: UInt64, driver: UInt64, device: UInt64, free: UInt64
        init(packed: Bool, size: UInt16) {
            let a = VirtqueueHarness.layout[0].gpa
            let n = UInt64(size)
            desc = a
            if packed {
                driver = a + 16 * n
                device = driver + 4
                free = (device + 4 + 15) & ~15
            } else {
                driver = a + 16 * n
                device = (driver + 6 + 2 * n + 3) & ~3
                free = (device + 6 + 8 * n + 15) & ~15
            }
        }
    }

    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        let mode = input.read(UInt8.self), sizeByte = input.read(UInt8.self)
        let base = input.read(UInt16.self), featureByte = input.read(UInt8.self), walkHead = input.read(UInt8.self)
        let packed = mode & 1 != 0
        let size: UInt16 = packed ? 1 + UInt16(sizeByte % 64) : 1 << UInt16(sizeByte % 7)
        let rules = ChainRules(indirectAllowed: mode & 2 != 0, maxIndirectDescriptors: 64)
        let limits = BlkDeviceLimits(capacitySectors: capacitySectors, readOnly: featureByte & 1 != 0,
                                     flush: featureByte & 2 != 0, discard: featureByte & 4 != 0, maxDiscardSegments: 2,
                                     writeZeroes: featureByte & 8 != 0, maxWriteZeroesSegments: 2)

        // SAFETY: each region is a fresh allocation of exactly its size,
        // freed at the end of this input; nothing keeps a pointer past that.
        let buffers = layout.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0.size, alignment: 4096) }
        defer { for b in buffers { b.deallocate() } }
        for b in buffers {
            b.initializeMemory(as: UInt8.self, repeating: 0)
            let chunk = input.take(b.count)
            b.copyMemory(from: chunk)
        }
        let regions = zip(layout, buffers).map { l, b in
            GuestMemory.Region(guestPhysAddr: l.gpa, size: UInt64(l.size), userAddr: userAddrBase + l.gpa,
                               hostAddress: b.baseAddress!)
        }
        guard let memory = try? GuestMemory(regions: regions) else {
            FuzzCheck.require(false, "the harness's own memory table is refused")
            return
        }
        let l = Layout(packed: packed, size: size)
        let addresses = RingAddresses(descriptors: userAddrBase + l.desc, driverArea: userAddrBase + l.driver,
                                      deviceArea: userAddrBase + l.device, space: .frontendVirtual)
        let chain = Chain(queueSize: size, maxIndirectDescriptors: rules.maxIndirectDescriptors)
        let queue: any DeviceQueue
        do {
            if packed {
                queue = try PackedQueue(size: size, addresses: addresses, memory: memory, eventIdx: mode & 4 != 0,
                                        rules: rules, availState: base % size | base & 0x8000)
            } else {
                let split = try SplitQueue(size: size, addresses: addresses, memory: memory, eventIdx: mode & 4 != 0,
                                           rules: rules, lastAvailIdx: base)
                // Inflight resubmission walks a head the device recorded, without the avail ring.
                if (try? split.walkChain(head: UInt16(walkHead), into: chain)) != nil {
                    serve(chain, memory: memory, limits: limits)
                }
                queue = split
            }
        } catch {
            FuzzCheck.require(false, "queue setup refused the harness's rings: \(error)")
            return
        }
        _ = queue.enableKickNotifications()
        var popped = 0
        while popped < 2 * Int(size) + 2 {
            popped += 1
            do {
                guard try queue.popAvail(into: chain) else { break }
                let used = serve(chain, memory: memory, limits: limits)
                queue.pushUsed(chain.token, length: used)
            } catch {
                switch error {
                case .badRequest:
                    BlkRequest.writeStatus(.ioError, to: chain)
                    queue.pushUsed(chain.token, length: 0)
                case .queueBroken:
                    FuzzCheck.require(queue.isBroken, "queueBroken thrown by a queue not marked broken")
                    return
                }
            }
            _ = queue.needsNotification()
        }
        queue.disableKickNotifications()
    }

    /// Checks the chain's segments, parses it as a virtio-blk request and
    /// touches every byte the request would move; returns the used length.
    @discardableResult
    static func serve(_ chain: Chain, memory: GuestMemory, limits: BlkDeviceLimits) -> UInt32 {
        var readable: UInt64 = 0, writable: UInt64 = 0
        for (i, s) in chain.segments.enumerated() {
            FuzzCheck.require(s.length > 0, "empty segment")
            FuzzCheck.require(memory.hostPointer(gpa: s.guestAddr, length: UInt64(s.length)) == s.hostPointer,
                              "segment not where its guest address maps")
            FuzzCheck.require(s.isWritable == (i >= chain.readableSegmentCount), "writable segment among readable ones")
            if s.isWritable { writable += UInt64(s.length) } else { readable += UInt64(s.length) }
        }
        FuzzCheck.require(readable == chain.readableBytes && writable == chain.writableBytes, "segment totals")
        let request: BlkRequest
        do {
            request = try BlkRequest.parse(chain, limits: limits)
        } catch {
            return BlkRequest.writeStatus(.ioError, to: chain)
        }
        FuzzCheck.require(request.statusOffset == chain.writableBytes - 1, "status is not the last writable byte")
        switch request.type {
        case .in, .out:
            let (end, o) = request.sector.addingReportingOverflow(UInt64(request.dataLength) / 512)
            FuzzCheck.require(!o && end <= limits.capacitySectors, "range outside the disk accepted")
        default: break
        }
        var moved: UInt64 = 0
        for piece in request.dataSlice(in: chain) {
            // Touch both ends of each piece: AddressSanitizer checks they are ours.
            let first = piece.hostPointer.load(as: UInt8.self)
            let last = piece.hostPointer.load(fromByteOffset: Int(piece.length) - 1, as: UInt8.self)
            if request.dataIsWritable {
                piece.hostPointer.storeBytes(of: first &+ 1, as: UInt8.self)
                piece.hostPointer.storeBytes(of: last, toByteOffset: Int(piece.length) - 1, as: UInt8.self)
            }
            moved += UInt64(piece.length)
        }
        FuzzCheck.require(moved == request.dataLength, "data slice length")
        for i in 0..<(request.type == .discard || request.type == .writeZeroes ? request.segmentCount : 0) {
            FuzzCheck.require(request.segment(i, in: chain) != nil, "discard segment unreadable")
        }
        request.complete(chain, status: .ok)
        return request.usedLength
    }

    // MARK: Seeds

    /// One seed: header bytes, then region A's bytes (the rest stays zero).
    static func seed(packed: Bool, size: UInt16, indirect: Bool = false, features: UInt8 = 0x0f,
                     _ fill: (inout [UInt8], Layout) -> Void) -> [UInt8] {
        let sizeByte: UInt8 = packed ? UInt8(size - 1) : UInt8(size.trailingZeroBitCount)
        let mode: UInt8 = (packed ? 1 : 0) | (indirect ? 2 : 0) | 4
        let l = Layout(packed: packed, size: size)
        var a = [UInt8](repeating: 0, count: layout[0].size + layout[1].size)
        fill(&a, l)
        // Trim trailing zeros: the harness zero-fills what the input leaves out.
        while a.last == 0 { a.removeLast() }
        return [mode, sizeByte, 0, packed ? 0x80 : 0, features, 0] + a
    }

    static func put<T: FixedWidthInteger>(_ a: inout [UInt8], _ gpa: UInt64, _ v: T) {
        let o = Int(gpa - layout[0].gpa)
        for i in 0..<MemoryLayout<T>.size { a[o + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    static func descriptor(_ a: inout [UInt8], at gpa: UInt64, addr: UInt64, len: UInt32, flags: UInt16, word: UInt16) {
        put(&a, gpa, addr)
        put(&a, gpa + 8, len)
        // Split: flags, next. Packed: id, flags (caller passes them in that order).
        put(&a, gpa + 12, flags)
        put(&a, gpa + 14, word)
    }

    static func header(_ a: inout [UInt8], at gpa: UInt64, type: UInt32, sector: UInt64) {
        put(&a, gpa, type)
        put(&a, gpa + 8, sector)
    }

    static func seeds() -> [[UInt8]] {
        var out: [[UInt8]] = []
        let next = RingLayout.descFlagNext, write = RingLayout.descFlagWrite
        // Split: a READ (header, 1 KiB crossing A→B, status) and a WRITE, both available.
        out.append(seed(packed: false, size: 8) { a, l in
            let hdr = l.free, st = l.free + 16, data: UInt64 = 0x1_2000 - 512
            header(&a, at: hdr, type: VirtioBlk.RequestType.in.rawValue, sector: 2)
            descriptor(&a, at: l.desc, addr: hdr, len: 16, flags: next, word: 1)
            descriptor(&a, at: l.desc + 16, addr: data, len: 1024, flags: next | write, word: 2)
            descriptor(&a, at: l.desc + 32, addr: st, len: 1, flags: write, word: 0)
            let hdr2 = l.free + 32
            header(&a, at: hdr2, type: VirtioBlk.RequestType.out.rawValue, sector: 0)
            descriptor(&a, at: l.desc + 48, addr: hdr2, len: 16, flags: next, word: 4)
            descriptor(&a, at: l.desc + 64, addr: 0x8_0000, len: 512, flags: next, word: 5)
            descriptor(&a, at: l.desc + 80, addr: st + 1, len: 1, flags: write, word: 0)
            put(&a, l.driver + 4, UInt16(0))
            put(&a, l.driver + 6, UInt16(3))
            put(&a, l.driver + 2, UInt16(2))        // avail.idx
        })
        // Split with INDIRECT: one descriptor naming a 3-entry table (FLUSH, then DISCARD).
        out.append(seed(packed: false, size: 4, indirect: true) { a, l in
            let table = l.free, hdr = l.free + 64, st = l.free + 96, seg = l.free + 112
            header(&a, at: hdr, type: VirtioBlk.RequestType.discard.rawValue, sector: 0)
            put(&a, seg, UInt64(8)); put(&a, seg + 8, UInt32(8))
            descriptor(&a, at: table, addr: hdr, len: 16, flags: next, word: 1)
            descriptor(&a, at: table + 16, addr: seg, len: 16, flags: next, word: 2)
            descriptor(&a, at: table + 32, addr: st, len: 1, flags: write, word: 0)
            descriptor(&a, at: l.desc, addr: table, len: 48, flags: RingLayout.descFlagIndirect, word: 0)
            let hdr2 = l.free + 160
            header(&a, at: hdr2, type: VirtioBlk.RequestType.flush.rawValue, sector: 0)
            descriptor(&a, at: l.desc + 16, addr: hdr2, len: 16, flags: next, word: 2)
            descriptor(&a, at: l.desc + 32, addr: st + 1, len: 1, flags: write, word: 0)
            put(&a, l.driver + 6, UInt16(1))
            put(&a, l.driver + 2, UInt16(2))
        })
        // Packed: GET_ID (3 descriptors) then an indirect WRITE_ZEROES.
        out.append(seed(packed: true, size: 8, indirect: true) { a, l in
            let avail = RingLayout.packedDescFlagAvail
            let hdr = l.free, id = l.free + 16, st = l.free + 48
            header(&a, at: hdr, type: VirtioBlk.RequestType.getID.rawValue, sector: 0)
            descriptor(&a, at: l.desc, addr: hdr, len: 16, flags: 0, word: avail | next)
            descriptor(&a, at: l.desc + 16, addr: id, len: 20, flags: 0, word: avail | next | write)
            descriptor(&a, at: l.desc + 32, addr: st, len: 1, flags: 5, word: avail | write)
            let table = l.free + 64, hdr2 = l.free + 128, seg = l.free + 144
            header(&a, at: hdr2, type: VirtioBlk.RequestType.writeZeroes.rawValue, sector: 0)
            put(&a, seg, UInt64(0)); put(&a, seg + 8, UInt32(16))
            descriptor(&a, at: table, addr: hdr2, len: 16, flags: 0, word: 0)
            descriptor(&a, at: table + 16, addr: seg, len: 16, flags: 0, word: 0)
            descriptor(&a, at: table + 32, addr: st + 1, len: 1, flags: 0, word: write)
            descriptor(&a, at: l.desc + 48, addr: table, len: 48, flags: 6,
                       word: avail | RingLayout.descFlagIndirect)
        })
        return out
    }
}
