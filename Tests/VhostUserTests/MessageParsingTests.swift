import Testing
import VireoSys
@testable import VhostUser

/// Parses `payload` as request `code` with `flags` and `fds` descriptors.
func parse(_ code: UInt32, flags: UInt32 = VhostUserHeader.version, _ payload: [UInt8] = [], fds: Int = 0,
           size: UInt32? = nil) throws(VhostUserProtocolError) -> VhostUserMessage {
    let header = VhostUserHeader(request: code, flags: flags, size: size ?? UInt32(payload.count))
    let result: Result<VhostUserMessage, VhostUserProtocolError> = payload.withUnsafeBytes { p in
        do throws(VhostUserProtocolError) {
            return .success(try VhostUserMessage.parse(header: header, payload: p, fdCount: fds))
        } catch { return .failure(error) }
    }
    return try result.get()
}

func u64(_ v: UInt64) -> [UInt8] { var o: [UInt8] = []; o.appendLE(v); return o }
func state(_ i: UInt32, _ n: UInt32) -> [UInt8] { var o: [UInt8] = []; VhostUserVringState(index: i, num: n).encode(into: &o); return o }
func region(_ gpa: UInt64, _ size: UInt64, _ uva: UInt64, _ off: UInt64 = 0) -> VhostUserMemoryRegionDescriptor {
    VhostUserMemoryRegionDescriptor(guestPhysicalAddress: gpa, size: size, frontendVirtualAddress: uva, mmapOffset: off)
}
func memTable(_ regions: [VhostUserMemoryRegionDescriptor], count: UInt32? = nil) -> [UInt8] {
    var o: [UInt8] = []
    o.appendLE(count ?? UInt32(regions.count)); o.appendLE(UInt32(0))
    for r in regions { r.encode(into: &o) }
    return o
}

func expectError(_ kind: VhostUserProtocolError.Kind, _ body: () throws -> VhostUserMessage,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let m = try body()
        Issue.record("expected \(kind), parsed \(m)", sourceLocation: sourceLocation)
    } catch let error as VhostUserProtocolError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.description.isEmpty, sourceLocation: sourceLocation)
    } catch {
        Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct MessageParsingTests {
    @Test func headerRoundTripAndTruncation() throws {
        var out: [UInt8] = []
        VhostUserHeader(request: 9, flags: 0x9, size: 40).encode(into: &out)
        let h = try out.withUnsafeBytes { try VhostUserHeader(decoding: $0) }
        #expect(h == VhostUserHeader(request: 9, flags: 0x9, size: 40))
        #expect(h.needsReply)
        for n in 0..<12 {
            let short = Array(out[0..<n])
            #expect(throws: VhostUserProtocolError(request: nil, .truncatedHeader(received: n))) {
                try short.withUnsafeBytes { try VhostUserHeader(decoding: $0) }
            }
        }
    }

    @Test func validMessagesDecode() throws {
        #expect(try parse(1) == .getFeatures)
        #expect(try parse(2, u64(0x1234)) == .setFeatures(0x1234))
        #expect(try parse(8, state(1, 256)) == .setVringNum(VhostUserVringState(index: 1, num: 256)))
        #expect(try parse(12, u64(0x101)) == .setVringKick(VhostUserVringFile(index: 1, noFD: true)))
        #expect(try parse(13, u64(0x2), fds: 1) == .setVringCall(VhostUserVringFile(index: 2, noFD: false)))
        let regions = [region(0, 0x10000, 0x7f00_0000_0000), region(0x100000, 0x20000, 0x7f00_1000_0000, 0x1000)]
        #expect(try parse(5, memTable(regions), fds: 2) == .setMemTable(regions))
        var addr: [UInt8] = []
        VhostUserVringAddress(index: 0, descriptorTable: 1, usedRing: 2, availableRing: 3).encode(into: &addr)
        #expect(try parse(9, addr) == .setVringAddr(VhostUserVringAddress(index: 0, descriptorTable: 1, usedRing: 2, availableRing: 3)))
        var cfg: [UInt8] = []
        VhostUserConfigPayload(offset: 0, data: Array(repeating: 0, count: 60)).encode(into: &cfg)
        #expect(try parse(24, cfg) == .getConfig(VhostUserConfigPayload(offset: 0, data: Array(repeating: 0, count: 60))))
        var inflight: [UInt8] = []
        VhostUserInflightDescriptor(mmapSize: 0, mmapOffset: 0, numQueues: 2, queueSize: 128).encode(into: &inflight)
        #expect(inflight.count == 24)
        #expect(try parse(31, inflight) == .getInflightFD(VhostUserInflightDescriptor(mmapSize: 0, mmapOffset: 0, numQueues: 2, queueSize: 128)))
        #expect(try parse(18, state(0, 1)) == .setVringEnable(VhostUserVringState(index: 0, num: 1)))
        #expect(try parse(19, [1, 2, 3, 4, 5, 6, 0, 0]) == .sendRARP([1, 2, 3, 4, 5, 6]))
    }

    /// Every fixed-size request, with one byte too few and one too many.
    @Test(arguments: [
        (UInt32(1), 0), (2, 8), (3, 0), (4, 0), (8, 8), (9, 40), (10, 8), (11, 8), (15, 0), (16, 8),
        (17, 0), (18, 8), (19, 8), (20, 8), (31, 24), (34, 0), (36, 0), (39, 8), (40, 0),
    ])
    func sizeMismatch(code: UInt32, size: Int) {
        for wrong in [size + 1, size - 1, size + 8] where wrong >= 0 {
            expectError(.sizeMismatch(expected: size, received: wrong)) {
                try parse(code, Array(repeating: 0, count: wrong))
            }
        }
    }

    @Test func sizeMismatchForFDRequests() {
        expectError(.sizeMismatch(expected: 16, received: 8)) { try parse(6, u64(0), fds: 1) }
        expectError(.sizeMismatch(expected: 24, received: 20)) { try parse(32, Array(repeating: 0, count: 20), fds: 1) }
        expectError(.sizeMismatch(expected: 40, received: 32)) { try parse(37, Array(repeating: 0, count: 32), fds: 1) }
        expectError(.sizeMismatch(expected: 0, received: 8)) { try parse(21, u64(0), fds: 1) }
        // SET_MEM_TABLE whose size disagrees with nregions.
        expectError(.sizeMismatch(expected: 8 + 64, received: 8 + 32)) {
            try parse(5, memTable([region(0, 4096, 0)], count: 2), fds: 2)
        }
        expectError(.sizeMismatch(expected: 8, received: 4)) { try parse(5, [1, 0, 0, 0]) }
        // config size field disagreeing with the payload.
        var cfg: [UInt8] = []
        cfg.appendLE(UInt32(0)); cfg.appendLE(UInt32(16)); cfg.appendLE(UInt32(0)); cfg += Array(repeating: 0, count: 8)
        expectError(.sizeMismatch(expected: 28, received: 20)) { try parse(24, cfg) }
    }

    @Test func payloadTooLargeAndTruncated() {
        expectError(.payloadTooLarge(size: 5000, max: 4096)) { try parse(2, [], size: 5000) }
        expectError(.payloadTooLarge(size: Int(UInt32.max), max: 4096)) { try parse(2, [], size: .max) }
        expectError(.truncatedPayload(expected: 8, received: 4)) { try parse(2, [0, 0, 0, 0], size: 8) }
    }

    @Test func wrongFDCounts() {
        expectError(.fdCount(expected: 1...1, received: 0)) { try parse(12, u64(0)) }      // kick without fd
        expectError(.fdCount(expected: 1...1, received: 2)) { try parse(13, u64(0), fds: 2) }
        expectError(.fdCount(expected: 0...0, received: 1)) { try parse(12, u64(0x100), fds: 1) } // NOFD with fd
        expectError(.fdCount(expected: 1...1, received: 0)) { try parse(21, []) }
        expectError(.fdCount(expected: 1...1, received: 2)) { try parse(21, [], fds: 2) }
        expectError(.fdCount(expected: 0...0, received: 1)) { try parse(1, [], fds: 1) }
        expectError(.fdCount(expected: 1...1, received: 0)) { try parse(7, []) }
        expectError(.fdCount(expected: 2...2, received: 1)) {
            try parse(5, memTable([region(0, 4096, 0), region(4096, 4096, 4096)]), fds: 1)
        }
        var rm: [UInt8] = u64(0); region(0, 4096, 0).encode(into: &rm)
        expectError(.fdCount(expected: 1...1, received: 0)) { try parse(37, rm) }
        expectError(.fdCount(expected: 0...1, received: 2)) { try parse(38, rm, fds: 2) }
        #expect((try? parse(38, rm, fds: 1)) == .remMemReg(region(0, 4096, 0)))
    }

    @Test func unknownAndUnsupportedRequests() {
        expectError(.unknownRequest(0)) { try parse(0) }
        expectError(.unknownRequest(999)) { try parse(999) }
        expectError(.unsupportedRequest) { try parse(22, Array(repeating: 0, count: 16)) } // IOTLB_MSG
        expectError(.unsupportedRequest) { try parse(28) } // POSTCOPY_ADVISE
    }

    @Test(arguments: [UInt32(0), 0x2, 0x3, 0x5, 0x11, 0x1_0001, 0x8000_0001])
    func badVersionFlags(flags: UInt32) {
        expectError(.badFlags(flags)) { try parse(1, flags: flags) }
    }

    @Test func needReplyAccepted() throws {
        #expect(try parse(3, flags: 0x9) == .setOwner)
    }

    @Test func memTableLimitsOverflowOverlap() {
        let nine = (0..<9).map { region(UInt64($0) << 20, 4096, UInt64($0) << 20) }
        expectError(.invalid("nregions 9 exceeds maximum 8")) { try parse(5, memTable(nine), fds: 9) }
        func expectInvalid(_ regions: [VhostUserMemoryRegionDescriptor], _ fragment: String) {
            do {
                _ = try parse(5, memTable(regions), fds: regions.count)
                Issue.record("accepted \(regions)")
            } catch {
                guard case .invalid(let why) = error.kind else { Issue.record("\(error)"); return }
                #expect(why.contains(fragment), "\(why)")
                #expect(error.description.hasPrefix("SET_MEM_TABLE: "))
            }
        }
        expectInvalid([region(UInt64.max - 100, 4096, 0)], "guest-physical range overflows")
        expectInvalid([region(0, 4096, UInt64.max - 10)], "front-end virtual range overflows")
        expectInvalid([region(0, 4096, 0, UInt64.max - 10)], "mmap offset + size overflows")
        expectInvalid([region(0, 0, 0)], "empty")
        expectInvalid([region(0, 0x2000, 0), region(0x1000, 0x2000, 0x10000)], "overlap in guest-physical")
        expectInvalid([region(0, 0x2000, 0), region(0x4000, 0x2000, 0x1000)], "overlap in front-end virtual")
    }

    @Test func vringFileAndEnableFieldChecks() {
        expectError(.invalid("reserved bits set in 0x200")) { try parse(12, u64(0x200), fds: 1) }
        expectError(.invalid("enable value 2 is not 0 or 1")) { try parse(18, state(0, 2)) }
        var addr: [UInt8] = []
        VhostUserVringAddress(index: 0, flags: 2, descriptorTable: 0, usedRing: 0, availableRing: 0).encode(into: &addr)
        expectError(.invalid("ring flags 0x2")) { try parse(9, addr) }
    }

    @Test func errorDescriptionsNameTheRequest() {
        let e = VhostUserProtocolError(request: .setVringNum, .sizeMismatch(expected: 8, received: 4))
        #expect(e.description == "SET_VRING_NUM: payload size 4, expected 8")
        #expect(VhostUserProtocolError(request: nil, .unknownRequest(77)).description == "unknown request code 77")
        #expect(VhostUserProtocolError(request: .setVringCall, .fdCount(expected: 1...1, received: 2)).description
            == "SET_VRING_CALL: received 2 fds, expected 1")
    }
}
