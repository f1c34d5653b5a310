import Testing
import VireoSys
@testable import VhostUser

/// Found by the vhost-user-session fuzz harness (deploy/fuzz/README.md): a
/// front-end that sends a memfd shorter than the region it describes (here
/// empty) had it mapped anyway, and the first ring access (SplitQueue reading
/// used.idx at SET_VRING_ENABLE) died of SIGBUS. A file that cannot back the
/// mapping must be refused with a protocol error, for guest memory and for
/// the dirty log alike.
@Suite struct ShortFileTests {
    static let region = VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0, size: 64 << 10,
                                                        frontendVirtualAddress: 0x7f00_0000_0000)

    @Test func emptyMemfdForAGuestRegionIsRefused() throws {
        let fd = try FileDescriptor.memfd(name: "empty-guest", size: 0)
        do {
            _ = try VhostUserMappedRegion(descriptor: Self.region, fd: fd, request: .setMemTable)
            Issue.record("an empty memfd was mapped as 64 KiB of guest memory")
        } catch {
            guard case .invalid(let why) = error.kind else { Issue.record("\(error)"); return }
            #expect(why.contains("file is 0 bytes"), "\(why)")
        }
    }

    @Test func memfdShorterThanOffsetPlusSizeIsRefused() throws {
        var d = Self.region
        d.mmapOffset = 4096
        let fd = try FileDescriptor.memfd(name: "short-guest", size: 64 << 10)   // needs 68 KiB
        do {
            _ = try VhostUserMappedRegion(descriptor: d, fd: fd, request: .addMemReg)
            Issue.record("a 64 KiB memfd was mapped for 4 KiB + 64 KiB")
        } catch {
            guard case .invalid(let why) = error.kind else { Issue.record("\(error)"); return }
            #expect(why.contains("needs \(68 << 10)"), "\(why)")
        }
    }

    @Test func memfdCoveringTheRegionIsMapped() throws {
        let fd = try FileDescriptor.memfd(name: "guest", size: 64 << 10)
        let r = try VhostUserMappedRegion(descriptor: Self.region, fd: fd, request: .setMemTable)
        #expect(r.region.size == 64 << 10)
        // SAFETY: inside the 64 KiB mapping just made.
        r.region.hostAddress.storeBytes(of: 1, toByteOffset: (64 << 10) - 1, as: UInt8.self)
    }

    @Test func emptyMemfdForTheDirtyLogIsRefused() throws {
        let fd = try FileDescriptor.memfd(name: "empty-log", size: 0)
        #expect(throws: SystemError.self) { _ = try DirtyLog(fd: fd, offset: 0, size: 4096) }
        let short = try FileDescriptor.memfd(name: "short-log", size: 4096)
        #expect(throws: SystemError.self) { _ = try DirtyLog(fd: short, offset: 8, size: 4096) }
    }
}
