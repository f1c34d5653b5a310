import Testing
import Virtio

/// A fake host address space: region host pointers only need to be valid
/// addresses for translation tests (nothing is dereferenced).
private func fakeHost(_ a: UInt) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: a)! }

private func twoAdjacent() throws -> GuestMemory {
    try GuestMemory(regions: [
        .init(guestPhysAddr: 0x2000, size: 0x1000, userAddr: 0x7000_2000, hostAddress: fakeHost(0x10_0000)),
        .init(guestPhysAddr: 0x1000, size: 0x1000, userAddr: 0x7000_1000, hostAddress: fakeHost(0x20_0000)),
        .init(guestPhysAddr: 0x10000, size: 0x1000, userAddr: 0x9000_0000, hostAddress: fakeHost(0x30_0000)),
    ])
}

@Suite struct GuestMemoryTests {
    @Test func regionsSortedAndBoundaries() throws {
        let m = try twoAdjacent()
        #expect(m.regions.map(\.guestPhysAddr) == [0x1000, 0x2000, 0x10000])
        // First and last byte of a region.
        #expect(m.hostPointer(gpa: 0x1000, length: 1) == fakeHost(0x20_0000))
        #expect(m.hostPointer(gpa: 0x1FFF, length: 1) == fakeHost(0x20_0FFF))
        #expect(m.hostPointer(gpa: 0x1000, length: 0x1000) == fakeHost(0x20_0000))
        // One past the end of a region into the next: not contiguous in one region.
        #expect(m.hostPointer(gpa: 0x1FFF, length: 2) == nil)
        #expect(m.hostPointer(gpa: 0x0FFF, length: 1) == nil)
        #expect(m.hostPointer(gpa: 0x3000, length: 1) == nil)
        #expect(m.hostPointer(gpa: 0x10FFF, length: 1) == fakeHost(0x30_0FFF))
        #expect(m.hostPointer(gpa: 0x11000, length: 0) == nil)
    }

    @Test func splitAcrossAdjacentRegions() throws {
        let m = try twoAdjacent()
        let out = UnsafeMutableBufferPointer<GuestMemory.HostRange>.allocate(capacity: 4)
        defer { out.deallocate() }
        let n = try m.translate(gpa: 0x1F00, length: 0x200, into: out)
        #expect(n == 2)
        #expect(out[0] == .init(hostPointer: fakeHost(0x20_0F00), guestAddr: 0x1F00, length: 0x100))
        #expect(out[1] == .init(hostPointer: fakeHost(0x10_0000), guestAddr: 0x2000, length: 0x100))
        // Whole span of both adjacent regions.
        #expect(try m.translate(gpa: 0x1000, length: 0x2000, into: out) == 2)
        // Zero length: no ranges.
        #expect(try m.translate(gpa: 0x1000, length: 0, into: out) == 0)
        // Output too small.
        let one = UnsafeMutableBufferPointer(rebasing: out[0..<1])
        #expect(throws: TranslationError.tooManyRanges) { try m.translate(gpa: 0x1F00, length: 0x200, into: one) }
    }

    @Test func gapsAreUnmapped() throws {
        let m = try twoAdjacent()
        let out = UnsafeMutableBufferPointer<GuestMemory.HostRange>.allocate(capacity: 4)
        defer { out.deallocate() }
        // Runs off the second adjacent region into the gap before 0x10000.
        #expect(throws: TranslationError.unmapped) { try m.translate(gpa: 0x2F00, length: 0x200, into: out) }
        #expect(throws: TranslationError.unmapped) { try m.translate(gpa: 0x5000, length: 1, into: out) }
        #expect(throws: TranslationError.unmapped) { try m.translate(gpa: 0, length: 0x1001, into: out) }
        #expect(throws: TranslationError.unmapped) { try m.translate(gpa: 0x10FFF, length: 2, into: out) }
    }

    @Test func overflowSafe() throws {
        let top = try GuestMemory(regions: [
            .init(guestPhysAddr: UInt64.max - 0xFFF, size: 0x1000, userAddr: 0x1000, hostAddress: fakeHost(0x10_0000)),
        ])
        let out = UnsafeMutableBufferPointer<GuestMemory.HostRange>.allocate(capacity: 4)
        defer { out.deallocate() }
        // The very last byte of the address space is mapped.
        #expect(try top.translate(gpa: UInt64.max, length: 1, into: out) == 1)
        #expect(top.hostPointer(gpa: UInt64.max, length: 1) == fakeHost(0x10_0FFF))
        // Anything wrapping past 2^64 is an overflow, not a wrap to 0.
        #expect(throws: TranslationError.overflow) { try top.translate(gpa: UInt64.max, length: 2, into: out) }
        #expect(throws: TranslationError.overflow) { try top.translate(gpa: UInt64.max - 10, length: 1 << 32, into: out) }
        #expect(throws: TranslationError.overflow) { try top.translate(gpa: 1 << 63, length: UInt64.max, into: out) }
        #expect(top.hostPointer(gpa: UInt64.max - 0xF, length: 1 << 32) == nil)
        #expect(top.hostPointer(gpa: UInt64.max, length: UInt64.max) == nil)
        // A 2^32 length inside a small region.
        let m = try twoAdjacent()
        #expect(throws: TranslationError.unmapped) { try m.translate(gpa: 0x1000, length: 1 << 32, into: out) }
    }

    @Test func invalidTablesRejected() {
        #expect(throws: GuestMemoryError.emptyRegion(index: 0)) {
            try GuestMemory(regions: [.init(guestPhysAddr: 0, size: 0, userAddr: 0, hostAddress: fakeHost(0x1000))])
        }
        #expect(throws: GuestMemoryError.addressOverflow(index: 0)) {
            try GuestMemory(regions: [.init(guestPhysAddr: UInt64.max, size: 2, userAddr: 0, hostAddress: fakeHost(0x1000))])
        }
        #expect(throws: GuestMemoryError.addressOverflow(index: 0)) {
            try GuestMemory(regions: [.init(guestPhysAddr: 0, size: 2, userAddr: UInt64.max, hostAddress: fakeHost(0x1000))])
        }
        // Overlap in guest-physical space.
        #expect(throws: GuestMemoryError.overlappingGuestPhysical(0x1000, 0x1FFF)) {
            try GuestMemory(regions: [
                .init(guestPhysAddr: 0x1000, size: 0x1000, userAddr: 0x10000, hostAddress: fakeHost(0x1000)),
                .init(guestPhysAddr: 0x1FFF, size: 0x1000, userAddr: 0x20000, hostAddress: fakeHost(0x9000)),
            ])
        }
        // Overlap in front-end virtual space.
        #expect(throws: GuestMemoryError.overlappingUserAddress(0x10000, 0x10800)) {
            try GuestMemory(regions: [
                .init(guestPhysAddr: 0x1000, size: 0x1000, userAddr: 0x10000, hostAddress: fakeHost(0x1000)),
                .init(guestPhysAddr: 0x8000, size: 0x1000, userAddr: 0x10800, hostAddress: fakeHost(0x9000)),
            ])
        }
        // Identical base.
        #expect(throws: GuestMemoryError.self) {
            try GuestMemory(regions: [
                .init(guestPhysAddr: 0x1000, size: 0x10, userAddr: 0x10000, hostAddress: fakeHost(0x1000)),
                .init(guestPhysAddr: 0x1000, size: 0x10, userAddr: 0x20000, hostAddress: fakeHost(0x9000)),
            ])
        }
    }

    @Test func frontendVirtualTranslation() throws {
        let m = try twoAdjacent()
        #expect(m.hostPointer(userAddr: 0x7000_1000, length: 0x1000) == fakeHost(0x20_0000))
        #expect(m.hostPointer(userAddr: 0x7000_2010, length: 0x10) == fakeHost(0x10_0010))
        // Contiguous in VA but two regions: rejected for the contiguous lookup.
        #expect(m.hostPointer(userAddr: 0x7000_1FF0, length: 0x20) == nil)
        #expect(m.hostPointer(userAddr: 0x6FFF_FFFF, length: 1) == nil)
        #expect(m.hostPointer(userAddr: 0x9000_0000, length: 1 << 32) == nil)
        #expect(m.guestPhysAddr(userAddr: 0x9000_0010) == 0x10010)
        #expect(m.guestPhysAddr(userAddr: 0x9000_1000) == nil)
        #expect(GuestMemory.empty.hostPointer(gpa: 0, length: 1) == nil)
    }
}
