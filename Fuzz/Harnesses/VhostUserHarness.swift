import VhostUser

// Input: a sequence of front-end messages, each
//   fd count u8 · header (request u32, flags u32, size u32) · payload,
// where the payload is the next `size` bytes (fewer when the input ends,
// which the parser must refuse as truncated).

extension FuzzHarness {
    /// vhost-user message framing and validation (`VhostUserMessage.parse`).
    public static let vhostUser = FuzzHarness(name: "vhost-user", run: VhostUserHarness.run, seeds: VhostUserHarness.seeds)
}

enum VhostUserHarness {
    static func run(_ data: UnsafeRawBufferPointer) {
        var input = FuzzInput(data)
        var messages = 0
        while !input.isEmpty, messages < 64 {
            messages += 1
            let fds = Int(input.read(UInt8.self) % 10)
            let headerBytes = input.take(VhostUserHeader.size)
            guard let header = try? VhostUserHeader(decoding: headerBytes) else { return }
            let payload = input.take(Int(min(header.size, UInt32(VhostUserHeader.maxPayloadSize + 64))))
            // An exactly sized copy, so AddressSanitizer sees a read past the payload.
            let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: payload.count, alignment: 8)
            defer { copy.deallocate() }
            copy.copyMemory(from: payload)
            guard let m = try? VhostUserMessage.parse(header: header, payload: UnsafeRawBufferPointer(copy), fdCount: fds) else {
                continue
            }
            check(m, header: header, payloadCount: payload.count, fds: fds)
        }
    }

    static func check(_ m: VhostUserMessage, header: VhostUserHeader, payloadCount: Int, fds: Int) {
        FuzzCheck.require(Int(header.size) == payloadCount, "accepted a truncated payload")
        FuzzCheck.require(m.request.rawValue == header.request, "parsed as another request")
        switch m {
        case .setMemTable(let regions):
            FuzzCheck.require(regions.count == fds && regions.count <= VhostUserMessage.maxMemTableRegions, "region count")
            for (i, a) in regions.enumerated() {
                FuzzCheck.require(a.size > 0 && !a.guestPhysicalAddress.addingReportingOverflow(a.size).overflow
                                  && !a.frontendVirtualAddress.addingReportingOverflow(a.size).overflow, "region range")
                for b in regions[(i + 1)...] {
                    FuzzCheck.require(!(a.guestPhysicalAddress < b.guestPhysicalEnd && b.guestPhysicalAddress < a.guestPhysicalEnd),
                                      "overlapping regions accepted")
                }
            }
        case .addMemReg(let r), .remMemReg(let r):
            FuzzCheck.require(r.size > 0 && !r.guestPhysicalAddress.addingReportingOverflow(r.size).overflow, "region range")
        case .setVringKick(let f), .setVringCall(let f), .setVringErr(let f):
            FuzzCheck.require(fds == (f.noFD ? 0 : 1), "fd count of a vring file")
        case .getConfig(let c), .setConfig(let c):
            FuzzCheck.require(c.data.count <= VhostUserConfigPayload.maxDataSize, "config size")
        case .sendRARP(let mac):
            FuzzCheck.require(mac.count == 6, "RARP MAC length")
        default:
            break
        }
    }

    static func frame(_ request: VhostUserRequest, fds: UInt8 = 0, flags: UInt32 = VhostUserHeader.version,
                      _ payload: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = [fds]
        VhostUserHeader(request: request.rawValue, flags: flags, size: UInt32(payload.count)).encode(into: &out)
        return out + payload
    }

    static func encoded(_ body: (inout [UInt8]) -> Void) -> [UInt8] {
        var o: [UInt8] = []
        body(&o)
        return o
    }

    static func seeds() -> [[UInt8]] {
        let ack = VhostUserHeader.version | VhostUserHeader.needReplyFlag
        let regions = [
            VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0, size: 0x10_0000, frontendVirtualAddress: 0x7f00_0000_0000),
            VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0x10_0000, size: 0x1000,
                                            frontendVirtualAddress: 0x7f00_1000_0000, mmapOffset: 4096),
        ]
        let memTable = encoded { o in
            o.appendLE(UInt32(regions.count)); o.appendLE(UInt32(0))
            for r in regions { r.encode(into: &o) }
        }
        // A front-end's start-up, as QEMU sends it.
        var startup: [UInt8] = []
        startup += frame(.getFeatures)
        startup += frame(.getProtocolFeatures)
        startup += frame(.setProtocolFeatures, encoded { $0.appendLE(UInt64(0x1ff)) })
        startup += frame(.setOwner)
        startup += frame(.setFeatures, flags: ack, encoded { $0.appendLE(UInt64(1) << 32 | 1 << 30) })
        startup += frame(.setMemTable, fds: 2, flags: ack, memTable)
        startup += frame(.setVringNum, encoded { VhostUserVringState(index: 0, num: 256).encode(into: &$0) })
        startup += frame(.setVringBase, encoded { VhostUserVringState(index: 0, num: 0).encode(into: &$0) })
        startup += frame(.setVringAddr, encoded {
            VhostUserVringAddress(index: 0, flags: 0, descriptorTable: 0x7f00_0000_0000, usedRing: 0x7f00_0000_2000,
                                  availableRing: 0x7f00_0000_1000, logGuestAddress: 0).encode(into: &$0)
        })
        startup += frame(.setVringKick, fds: 1, encoded { $0.appendLE(VhostUserVringFile(index: 0, noFD: false).rawValue) })
        startup += frame(.setVringCall, encoded { $0.appendLE(VhostUserVringFile(index: 0, noFD: true).rawValue) })
        startup += frame(.setVringEnable, encoded { VhostUserVringState(index: 0, num: 1).encode(into: &$0) })
        var other: [UInt8] = []
        other += frame(.getConfig, encoded { o in
            o.appendLE(UInt32(0)); o.appendLE(UInt32(8)); o.appendLE(UInt32(0)); o += [UInt8](repeating: 0, count: 8)
        })
        other += frame(.getInflightFD, encoded {
            VhostUserInflightDescriptor(mmapSize: 0, mmapOffset: 0, numQueues: 1, queueSize: 256).encode(into: &$0)
        })
        other += frame(.setInflightFD, fds: 1, encoded {
            VhostUserInflightDescriptor(mmapSize: 4096, mmapOffset: 0, numQueues: 1, queueSize: 256).encode(into: &$0)
        })
        other += frame(.setLogBase, fds: 1, encoded { VhostUserLogDescriptor(mmapSize: 4096, mmapOffset: 0).encode(into: &$0) })
        other += frame(.addMemReg, fds: 1, encoded { o in o.appendLE(UInt64(0)); regions[1].encode(into: &o) })
        other += frame(.remMemReg, encoded { o in o.appendLE(UInt64(0)); regions[1].encode(into: &o) })
        other += frame(.sendRARP, encoded { $0 += [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0] })
        other += frame(.getVringBase, encoded { VhostUserVringState(index: 0, num: 0).encode(into: &$0) })
        other += frame(.setStatus, encoded { $0.appendLE(UInt64(0x0f)) })
        other += frame(.resetDevice)
        return [startup, other]
    }
}
