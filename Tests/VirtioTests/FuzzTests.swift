import Testing
import Virtio
import VirtioDriver
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Random descriptor tables, rings and indirect tables: the device side must
/// never crash and never yield a segment outside guest memory. Deterministic:
/// the seed is printed and can be set with VIREO_FUZZ_SEED.
@Suite struct FuzzTests {
    static let seed: UInt64 = {
        if let s = getenv("VIREO_FUZZ_SEED"), let v = UInt64(String(cString: s)) { return v }
        return 0x5EED_F00D
    }()
    static let iterations = 4000
    static let timeBudgetNanoseconds: UInt64 = 2_000_000_000

    /// Layout: rings in region A; regions A and B adjacent; C apart; a gap after each.
    static func memory() throws -> DriverMemory {
        try DriverMemory(regions: [(0x10_0000, 0x8000), (0x10_8000, 0x8000), (0x20_0000, 0x4000)])
    }

    /// An address biased towards interesting places: region edges, the
    /// indirect area, gaps, and the top of the address space.
    static func address(_ rng: inout SeededRNG, indirectArea: UInt64) -> UInt64 {
        let edges: [UInt64] = [0x10_0000, 0x10_8000, 0x11_0000, 0x20_0000, 0x20_4000, 0, UInt64.max]
        switch UInt8.random(in: 0..<8, using: &rng) {
        case 0: return UInt64.random(in: 0...UInt64.max, using: &rng)
        case 1: return UInt64.max &- UInt64.random(in: 0..<0x10000, using: &rng)
        case 2, 3: return indirectArea + UInt64.random(in: 0..<64, using: &rng) * 16
        default:
            let e = edges.randomElement(using: &rng)!
            return e &+ UInt64.random(in: 0..<0x200, using: &rng) &- 0x100
        }
    }

    static func length(_ rng: inout SeededRNG) -> UInt32 {
        switch UInt8.random(in: 0..<6, using: &rng) {
        case 0: return UInt32.random(in: 0...UInt32.max, using: &rng)
        case 1: return UInt32.max &- UInt32.random(in: 0..<32, using: &rng)
        case 2: return UInt32.random(in: 0...4, using: &rng) * 16
        default: return UInt32.random(in: 0...0x9000, using: &rng)
        }
    }

    /// Fills `count` 16-byte descriptors at `gpa` with biased random content.
    static func scribble(_ mem: DriverMemory, at gpa: UInt64, count: Int, size: UInt16, packedWrap: Bool?,
                         indirectArea: UInt64, _ rng: inout SeededRNG) {
        for i in 0..<count {
            let d = mem.host(gpa + UInt64(i * 16))
            d.storeBytes(of: address(&rng, indirectArea: indirectArea).littleEndian, toByteOffset: 0, as: UInt64.self)
            d.storeBytes(of: length(&rng).littleEndian, toByteOffset: 8, as: UInt32.self)
            var flags = UInt16.random(in: 0...7, using: &rng)
            if Int.random(in: 0..<8, using: &rng) == 0 { flags = UInt16.random(in: 0...UInt16.max, using: &rng) }
            if let wrap = packedWrap, Int.random(in: 0..<4, using: &rng) != 0 {
                // Mostly available descriptors so the walker gets exercised.
                flags = flags & ~(RingLayout.packedDescFlagAvail | RingLayout.packedDescFlagUsed)
                    | (wrap ? RingLayout.packedDescFlagAvail : RingLayout.packedDescFlagUsed)
            }
            let next = Int.random(in: 0..<4, using: &rng) == 0 ? UInt16.random(in: 0...UInt16.max, using: &rng)
                                                               : UInt16.random(in: 0..<(size + 2), using: &rng)
            if packedWrap != nil {
                d.storeBytes(of: next.littleEndian, toByteOffset: 12, as: UInt16.self)   // buffer id
                d.storeBytes(of: flags.littleEndian, toByteOffset: 14, as: UInt16.self)
            } else {
                d.storeBytes(of: flags.littleEndian, toByteOffset: 12, as: UInt16.self)
                d.storeBytes(of: next.littleEndian, toByteOffset: 14, as: UInt16.self)
            }
        }
    }

    /// Every segment lies inside the memfd mapping and inside its region.
    static func checkSegments(_ chain: Chain, _ mem: DriverMemory) {
        let lo = UInt(bitPattern: mem.hostBuffer.baseAddress!)
        let hi = lo + UInt(mem.hostBuffer.count)
        var readable: UInt64 = 0, writable: UInt64 = 0
        for (i, s) in chain.segments.enumerated() {
            let p = UInt(bitPattern: s.hostPointer)
            #expect(p >= lo && p <= hi && UInt(s.length) <= hi - p, "segment outside guest memory")
            #expect(s.length > 0)
            #expect(mem.guestMemory.hostPointer(gpa: s.guestAddr, length: UInt64(s.length)) == s.hostPointer)
            #expect(s.isWritable == (i >= chain.readableSegmentCount))
            if s.isWritable { writable += UInt64(s.length) } else { readable += UInt64(s.length) }
        }
        #expect(readable <= UInt64(chain.readableBytes) && writable <= UInt64(chain.writableBytes))
    }

    @Test func splitRandomRings() throws {
        print("FuzzTests.splitRandomRings seed=\(Self.seed) (set VIREO_FUZZ_SEED to reproduce)")
        var rng = SeededRNG(seed: Self.seed)
        let mem = try Self.memory()
        let size: UInt16 = 16
        let drv = SplitDriverQueue(memory: mem, size: size, eventIdx: true)
        let indirectArea = mem.allocate(64 * 16, alignment: 16)
        let chain = Chain(capacity: 24)
        let start = monotonicNanoseconds()
        var stats = (ok: 0, bad: 0, broken: 0)
        for iter in 0..<Self.iterations {
            if monotonicNanoseconds() - start > Self.timeBudgetNanoseconds { break }
            let base = UInt16.random(in: 0...UInt16.max, using: &rng)
            let dev = try SplitQueue(size: size, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true,
                                     rules: ChainRules(indirectAllowed: iter % 5 != 0, maxIndirectDescriptors: 64),
                                     lastAvailIdx: base)
            Self.scribble(mem, at: drv.descGPA, count: Int(size), size: size, packedWrap: nil, indirectArea: indirectArea, &rng)
            Self.scribble(mem, at: indirectArea, count: 64, size: size, packedWrap: nil, indirectArea: indirectArea, &rng)
            for slot in 0..<size {
                let head = Int.random(in: 0..<10, using: &rng) == 0 ? UInt16.random(in: 0...UInt16.max, using: &rng)
                                                                    : UInt16.random(in: 0..<size, using: &rng)
                drv.writeAvailRing(slot: slot, head: head)
            }
            let ahead = Int.random(in: 0..<8, using: &rng) == 0 ? UInt16.random(in: 0...UInt16.max, using: &rng)
                                                                : UInt16.random(in: 0...size, using: &rng)
            drv.forceAvailIdx(base &+ ahead)
            drv.setUsedEvent(UInt16.random(in: 0...UInt16.max, using: &rng))
            for _ in 0..<(Int(size) + 2) {
                do {
                    guard try dev.popAvail(into: chain) else { break }
                    stats.ok += 1
                    Self.checkSegments(chain, mem)
                    dev.pushUsed(chain.token, length: chain.writableBytes)
                } catch let e {
                    Self.checkSegments(chain, mem)
                    if case .queueBroken = e { stats.broken += 1; break }
                    stats.bad += 1
                    dev.pushUsed(chain.token, length: 0)
                }
                _ = dev.needsNotification()
            }
        }
        print("FuzzTests.splitRandomRings ok=\(stats.ok) bad=\(stats.bad) broken=\(stats.broken)")
        #expect(stats.ok > 0 && stats.bad > 0 && stats.broken > 0)
    }

    @Test func packedRandomRings() throws {
        print("FuzzTests.packedRandomRings seed=\(Self.seed) (set VIREO_FUZZ_SEED to reproduce)")
        var rng = SeededRNG(seed: Self.seed ^ 0xABCD)
        let mem = try Self.memory()
        let size: UInt16 = 12
        let drv = PackedDriverQueue(memory: mem, size: size, eventIdx: true)
        let indirectArea = mem.allocate(64 * 16, alignment: 16)
        let chain = Chain(capacity: 24)
        let start = monotonicNanoseconds()
        var stats = (ok: 0, bad: 0, broken: 0)
        for iter in 0..<Self.iterations {
            if monotonicNanoseconds() - start > Self.timeBudgetNanoseconds { break }
            let slot = UInt16.random(in: 0..<size, using: &rng)
            let wrap = Bool.random(using: &rng)
            let state = slot | (wrap ? 0x8000 : 0)
            let dev = try PackedQueue(size: size, addresses: drv.addresses, memory: mem.guestMemory, eventIdx: true,
                                      rules: ChainRules(indirectAllowed: iter % 5 != 0, maxIndirectDescriptors: 64),
                                      availState: state)
            Self.scribble(mem, at: drv.ringGPA, count: Int(size), size: size, packedWrap: wrap, indirectArea: indirectArea, &rng)
            Self.scribble(mem, at: indirectArea, count: 64, size: size, packedWrap: nil, indirectArea: indirectArea, &rng)
            drv.setDriverEvent(offWrap: UInt16.random(in: 0...UInt16.max, using: &rng), flags: UInt16.random(in: 0...3, using: &rng))
            for _ in 0..<(Int(size) + 2) {
                do {
                    guard try dev.popAvail(into: chain) else { break }
                    stats.ok += 1
                    Self.checkSegments(chain, mem)
                    #expect(chain.token.descriptorCount >= 1 && chain.token.descriptorCount <= size)
                    dev.pushUsed(chain.token, length: chain.writableBytes)
                } catch let e {
                    Self.checkSegments(chain, mem)
                    if case .queueBroken = e { stats.broken += 1; break }
                    stats.bad += 1
                    dev.pushUsed(chain.token, length: 0)
                }
                _ = dev.needsNotification()
            }
        }
        print("FuzzTests.packedRandomRings ok=\(stats.ok) bad=\(stats.bad) broken=\(stats.broken)")
        #expect(stats.ok > 0 && stats.bad > 0)
    }

    /// Random region tables: validation and translation never trap, and
    /// every translated range stays inside its region.
    @Test func randomTranslations() throws {
        var rng = SeededRNG(seed: Self.seed ^ 0x1234)
        let out = UnsafeMutableBufferPointer<GuestMemory.HostRange>.allocate(capacity: 4)
        defer { out.deallocate() }
        var translated = 0
        for _ in 0..<2000 {
            var regions: [GuestMemory.Region] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let gpa = Bool.random(using: &rng) ? UInt64.random(in: 0...UInt64.max, using: &rng)
                                                   : UInt64.random(in: 0...8, using: &rng) * 0x1000
                let size = Bool.random(using: &rng) ? UInt64.random(in: 0...UInt64.max, using: &rng)
                                                    : UInt64.random(in: 0...3, using: &rng) * 0x1000
                regions.append(.init(guestPhysAddr: gpa, size: size, userAddr: UInt64.random(in: 0...UInt64.max, using: &rng),
                                     hostAddress: UnsafeMutableRawPointer(bitPattern: UInt(0x1000_0000) * UInt.random(in: 1...8, using: &rng))!))
            }
            guard let gm = try? GuestMemory(regions: regions) else { continue }
            for _ in 0..<20 {
                let gpa = Bool.random(using: &rng) ? UInt64.random(in: 0...UInt64.max, using: &rng)
                                                   : UInt64.random(in: 0...0x9000, using: &rng)
                let len = Bool.random(using: &rng) ? UInt64.random(in: 0...UInt64.max, using: &rng)
                                                   : UInt64.random(in: 0...0x3000, using: &rng)
                guard let n = try? gm.translate(gpa: gpa, length: len, into: out) else { continue }
                translated += 1
                var total: UInt64 = 0
                for r in out[0..<n] {
                    let region = try #require(gm.regions.first { r.guestAddr >= $0.guestPhysAddr && r.guestAddr - $0.guestPhysAddr < $0.size })
                    #expect(r.length <= region.size - (r.guestAddr - region.guestPhysAddr))
                    total += r.length
                }
                #expect(total == len)
            }
        }
        #expect(translated > 0)
    }
}

