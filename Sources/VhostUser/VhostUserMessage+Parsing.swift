extension VhostUserMessage {
    /// Regions in one SET_MEM_TABLE (`VHOST_MEMORY_BASELINE_NREGIONS`).
    public static let maxMemTableRegions = 8

    /// Validates and decodes one request.
    ///
    /// Checks, in order: flags (version 1, REPLY clear, reserved bits zero),
    /// request code, payload size against the maximum and against the exact
    /// size the request needs, and the number of fds the request carries.
    /// Field checks that need no connection state (region overflow/overlap,
    /// NOFD/index bits, config size) are done here too; state-dependent
    /// checks (ring index vs queue count, addresses vs the memory table)
    /// are the session's.
    ///
    /// Never traps, whatever the bytes.
    public static func parse(
        header: VhostUserHeader, payload: UnsafeRawBufferPointer, fdCount: Int
    ) throws(VhostUserProtocolError) -> VhostUserMessage {
        let known = VhostUserRequest(rawValue: header.request)
        let reserved = ~(VhostUserHeader.versionMask | VhostUserHeader.needReplyFlag)
        guard header.flags & VhostUserHeader.versionMask == VhostUserHeader.version,
              header.flags & reserved == 0
        else { throw VhostUserProtocolError(request: known, .badFlags(header.flags)) }
        guard let request = known else {
            throw VhostUserProtocolError(request: nil, .unknownRequest(header.request))
        }
        let size = Int(header.size)
        guard size <= VhostUserHeader.maxPayloadSize else {
            throw VhostUserProtocolError(request: request, .payloadTooLarge(size: size, max: VhostUserHeader.maxPayloadSize))
        }
        guard payload.count == size else {
            throw VhostUserProtocolError(request: request, .truncatedPayload(expected: size, received: payload.count))
        }

        func expect(size want: Int, fds: ClosedRange<Int> = 0...0) throws(VhostUserProtocolError) {
            guard size == want else { throw VhostUserProtocolError(request: request, .sizeMismatch(expected: want, received: size)) }
            guard fds.contains(fdCount) else { throw VhostUserProtocolError(request: request, .fdCount(expected: fds, received: fdCount)) }
        }
        func u64() -> UInt64 { payload.le(0) }
        func vringFile() throws(VhostUserProtocolError) -> VhostUserVringFile {
            try expect(size: 8, fds: 0...Int.max)
            let v = u64()
            guard v & ~(VhostUserVringFile.indexMask | VhostUserVringFile.noFDFlag) == 0 else {
                throw VhostUserProtocolError(request: request, .invalid("reserved bits set in 0x\(String(v, radix: 16))"))
            }
            let file = VhostUserVringFile(index: UInt32(v & VhostUserVringFile.indexMask), noFD: v & VhostUserVringFile.noFDFlag != 0)
            let want = file.noFD ? 0 : 1
            guard fdCount == want else {
                throw VhostUserProtocolError(request: request, .fdCount(expected: want...want, received: fdCount))
            }
            return file
        }
        func config() throws(VhostUserProtocolError) -> VhostUserConfigPayload {
            guard size >= VhostUserConfigPayload.headerSize else {
                throw VhostUserProtocolError(request: request, .sizeMismatch(expected: VhostUserConfigPayload.headerSize, received: size))
            }
            let offset: UInt32 = payload.le(0), dataSize: UInt32 = payload.le(4), flags: UInt32 = payload.le(8)
            guard dataSize <= UInt32(VhostUserConfigPayload.maxDataSize) else {
                throw VhostUserProtocolError(request: request, .invalid("config size \(dataSize) exceeds \(VhostUserConfigPayload.maxDataSize)"))
            }
            try expect(size: VhostUserConfigPayload.headerSize + Int(dataSize))
            guard flags & ~VhostUserConfigPayload.flagMigration == 0 else {
                throw VhostUserProtocolError(request: request, .invalid("config flags 0x\(String(flags, radix: 16))"))
            }
            let data = Array(payload[VhostUserConfigPayload.headerSize...])
            return VhostUserConfigPayload(offset: offset, flags: flags, data: data)
        }
        func singleRegion(fds: ClosedRange<Int>) throws(VhostUserProtocolError) -> VhostUserMemoryRegionDescriptor {
            try expect(size: 8 + VhostUserMemoryRegionDescriptor.wireSize, fds: fds)
            let region = VhostUserMemoryRegionDescriptor(UnsafeRawBufferPointer(rebasing: payload[8...]))
            try region.validate(request: request, index: 0)
            return region
        }

        switch request {
        case .getFeatures: try expect(size: 0); return .getFeatures
        case .getProtocolFeatures: try expect(size: 0); return .getProtocolFeatures
        case .getQueueNum: try expect(size: 0); return .getQueueNum
        case .getMaxMemSlots: try expect(size: 0); return .getMaxMemSlots
        case .getStatus: try expect(size: 0); return .getStatus
        case .setOwner: try expect(size: 0); return .setOwner
        case .resetOwner: try expect(size: 0); return .resetOwner
        case .resetDevice: try expect(size: 0); return .resetDevice
        case .setFeatures: try expect(size: 8); return .setFeatures(u64())
        case .setProtocolFeatures: try expect(size: 8); return .setProtocolFeatures(u64())
        case .setStatus: try expect(size: 8); return .setStatus(u64())
        case .netSetMTU: try expect(size: 8); return .netSetMTU(u64())
        case .sendRARP: try expect(size: 8); return .sendRARP(Array(payload[0..<6]))
        case .setVringNum: try expect(size: 8); return .setVringNum(VhostUserVringState(payload))
        case .setVringBase: try expect(size: 8); return .setVringBase(VhostUserVringState(payload))
        case .getVringBase: try expect(size: 8); return .getVringBase(VhostUserVringState(payload))
        case .setVringEnable:
            try expect(size: 8)
            let s = VhostUserVringState(payload)
            guard s.num <= 1 else { throw VhostUserProtocolError(request: request, .invalid("enable value \(s.num) is not 0 or 1")) }
            return .setVringEnable(s)
        case .setVringAddr:
            try expect(size: VhostUserVringAddress.wireSize)
            let a = VhostUserVringAddress(payload)
            guard a.flags & ~VhostUserVringAddress.flagLog == 0 else {
                throw VhostUserProtocolError(request: request, .invalid("ring flags 0x\(String(a.flags, radix: 16))"))
            }
            return .setVringAddr(a)
        case .setVringKick: return .setVringKick(try vringFile())
        case .setVringCall: return .setVringCall(try vringFile())
        case .setVringErr: return .setVringErr(try vringFile())
        case .setBackendReqFD: try expect(size: 0, fds: 1...1); return .setBackendReqFD
        case .setLogFD: try expect(size: 0, fds: 1...1); return .setLogFD
        case .setLogBase:
            try expect(size: VhostUserLogDescriptor.wireSize, fds: 1...1)
            let log = VhostUserLogDescriptor(payload)
            guard log.mmapSize > 0, log.mmapSize <= UInt64(Int.max),
                  !log.mmapOffset.addingReportingOverflow(log.mmapSize).overflow,
                  log.mmapOffset.addingReportingOverflow(log.mmapSize).partialValue <= UInt64(Int.max)
            else { throw VhostUserProtocolError(request: request, .invalid("log size \(log.mmapSize) at offset \(log.mmapOffset) out of range")) }
            return .setLogBase(log)
        case .getConfig: return .getConfig(try config())
        case .setConfig: return .setConfig(try config())
        case .getInflightFD:
            try expect(size: VhostUserInflightDescriptor.wireSize)
            return .getInflightFD(VhostUserInflightDescriptor(payload))
        case .setInflightFD:
            try expect(size: VhostUserInflightDescriptor.wireSize, fds: 1...1)
            let d = VhostUserInflightDescriptor(payload)
            guard d.mmapSize > 0, d.mmapSize <= UInt64(Int.max),
                  !d.mmapOffset.addingReportingOverflow(d.mmapSize).overflow,
                  d.mmapOffset.addingReportingOverflow(d.mmapSize).partialValue <= UInt64(Int.max)
            else { throw VhostUserProtocolError(request: request, .invalid("inflight size \(d.mmapSize) at offset \(d.mmapOffset) out of range")) }
            return .setInflightFD(d)
        case .addMemReg: return .addMemReg(try singleRegion(fds: 1...1))
        case .remMemReg: return .remMemReg(try singleRegion(fds: 0...1))
        case .setMemTable:
            guard size >= 8 else { throw VhostUserProtocolError(request: request, .sizeMismatch(expected: 8, received: size)) }
            let n: UInt32 = payload.le(0)
            guard n <= UInt32(maxMemTableRegions) else {
                throw VhostUserProtocolError(request: request, .invalid("nregions \(n) exceeds maximum \(maxMemTableRegions)"))
            }
            let count = Int(n)
            try expect(size: 8 + count * VhostUserMemoryRegionDescriptor.wireSize, fds: count...count)
            var regions: [VhostUserMemoryRegionDescriptor] = []
            regions.reserveCapacity(count)
            for i in 0..<count {
                let at = 8 + i * VhostUserMemoryRegionDescriptor.wireSize
                let r = VhostUserMemoryRegionDescriptor(UnsafeRawBufferPointer(rebasing: payload[at..<(at + VhostUserMemoryRegionDescriptor.wireSize)]))
                try r.validate(request: request, index: i)
                regions.append(r)
            }
            try VhostUserMemoryRegionDescriptor.checkDisjoint(regions, request: request)
            return .setMemTable(regions)
        case .iotlbMsg, .setVringEndian, .createCryptoSession, .closeCryptoSession, .postcopyAdvise,
             .postcopyListen, .postcopyEnd, .gpuSetSocket, .vringKick, .getSharedObject,
             .setDeviceStateFD, .checkDeviceState:
            throw VhostUserProtocolError(request: request, .unsupportedRequest)
        }
    }
}

extension VhostUserMemoryRegionDescriptor {
    /// One past the last guest-physical byte (validated: no overflow).
    public var guestPhysicalEnd: UInt64 { guestPhysicalAddress &+ size }
    /// One past the last front-end virtual byte (validated: no overflow).
    public var frontendVirtualEnd: UInt64 { frontendVirtualAddress &+ size }

    /// Rejects empty regions and any range that wraps or cannot be mapped.
    func validate(request: VhostUserRequest, index: Int) throws(VhostUserProtocolError) {
        func bad(_ why: String) -> VhostUserProtocolError {
            VhostUserProtocolError(request: request, .invalid("region \(index) (gpa 0x\(String(guestPhysicalAddress, radix: 16)) size 0x\(String(size, radix: 16))): \(why)"))
        }
        guard size > 0 else { throw bad("empty") }
        guard size <= UInt64(Int.max) else { throw bad("size too large") }
        guard !guestPhysicalAddress.addingReportingOverflow(size).overflow else { throw bad("guest-physical range overflows") }
        guard !frontendVirtualAddress.addingReportingOverflow(size).overflow else { throw bad("front-end virtual range overflows") }
        let (end, o) = mmapOffset.addingReportingOverflow(size)
        guard !o, end <= UInt64(Int.max) else { throw bad("mmap offset + size overflows") }
    }

    /// Rejects overlapping guest-physical or front-end virtual ranges.
    static func checkDisjoint(_ regions: [VhostUserMemoryRegionDescriptor], request: VhostUserRequest) throws(VhostUserProtocolError) {
        for i in regions.indices {
            for j in regions.indices where j > i {
                let a = regions[i], b = regions[j]
                if a.guestPhysicalAddress < b.guestPhysicalEnd && b.guestPhysicalAddress < a.guestPhysicalEnd {
                    throw VhostUserProtocolError(request: request, .invalid("regions \(i) and \(j) overlap in guest-physical space"))
                }
                if a.frontendVirtualAddress < b.frontendVirtualEnd && b.frontendVirtualAddress < a.frontendVirtualEnd {
                    throw VhostUserProtocolError(request: request, .invalid("regions \(i) and \(j) overlap in front-end virtual space"))
                }
            }
        }
    }
}
