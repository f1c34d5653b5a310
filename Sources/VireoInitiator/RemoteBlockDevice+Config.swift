import VhostUser
import Virtio
import VireoWire

extension RemoteBlockDevice {
    /// Data segments per request advertised to the guest (SEG_MAX): half the
    /// granted wire segments (a descriptor crossing a region boundary becomes
    /// two), and no more than `maxIOBytes / 4 KiB`, so that SEG_MAX × SIZE_MAX
    /// never exceeds the granted bytes per command.
    static func advertisedSegments(_ g: BlockGeometry) -> UInt32 {
        max(1, min(UInt32(g.maxSegments) / 2, g.maxIOBytes / 4096))
    }

    /// Largest segment advertised (SIZE_MAX).
    static func advertisedSegmentSize(_ g: BlockGeometry) -> UInt32 {
        g.maxIOBytes / advertisedSegments(g)
    }

    public var features: UInt64 {
        let g = geometry
        // Packed rings too: INFLIGHT_SHMFD tracks both layouts, so a restarted
        // initiator resubmits what either kind of ring had in flight.
        var f = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc | VirtioFeatures.ringPacked
            | VirtioBlk.Feature.sizeMax | VirtioBlk.Feature.segMax | VirtioBlk.Feature.blockSize
            | VirtioBlk.Feature.topology
        let limits = Self.blkLimits(g, readOnly: config.readOnly)
        if limits.flush { f |= VirtioBlk.Feature.flush }
        if limits.readOnly { f |= VirtioBlk.Feature.readOnly }
        if config.queues > 1 { f |= VirtioBlk.Feature.multiqueue }
        if limits.discard && !limits.readOnly { f |= VirtioBlk.Feature.discard }
        if limits.writeZeroes && !limits.readOnly { f |= VirtioBlk.Feature.writeZeroes }
        return f
    }

    public var protocolFeatures: VhostUserProtocolFeatures {
        [.mq, .logSHMFD, .replyAck, .backendReq, .config, .inflightSHMFD, .resetDevice, .configureMemSlots, .status]
    }

    /// `struct virtio_blk_config` from the target's geometry.
    public func configSpace() -> [UInt8] {
        let g = geometry
        var c = VirtioBlkConfig(capacity: g.capacityBytes / VirtioBlk.sectorSize)
        c.sizeMax = Self.advertisedSegmentSize(g)
        c.segMax = Self.advertisedSegments(g)
        c.blockSize = g.blockSize
        c.physicalBlockExp = 0
        c.alignmentOffset = 0
        c.minIOSize = 1
        c.optIOSize = g.optimalIOBytes / g.blockSize
        c.numQueues = UInt16(config.queues)
        if g.flags.contains(.discard) {
            c.maxDiscardSectors = g.maxDiscardBytes / 512
            c.maxDiscardSegments = 1
            c.discardSectorAlignment = g.blockSize / 512
        }
        if g.flags.contains(.writeZeroes) {
            c.maxWriteZeroesSectors = g.maxWriteZeroesBytes / 512
            c.maxWriteZeroesSegments = 1
            c.writeZeroesMayUnmap = 1
        }
        return c.serialize()
    }
}
