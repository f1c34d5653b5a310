import VhostUser
import Virtio
import VireoWire

extension RemoteNetDevice {
    /// Offered: VERSION_1, MAC, MTU, STATUS, MRG_RXBUF, CTRL_VQ (+ CTRL_RX,
    /// CTRL_MAC_ADDR, GUEST_ANNOUNCE), MQ with several pairs, EVENT_IDX,
    /// INDIRECT_DESC, RING_PACKED. No checksum or segmentation offload: frames
    /// cross the network as the guest wrote them, and the switch takes only
    /// plain frames. GUEST_ANNOUNCE is how a migrated guest's MAC moves to the
    /// destination's switch port: after a migration QEMU asks the guest to
    /// announce itself (§5.1.6.5.4), and its gratuitous ARP teaches the switch
    /// (vhost-user SEND_RARP is not offered: the initiator has no frame of its
    /// own to send through the guest's queues).
    public var features: UInt64 {
        var f = VirtioFeatures.version1 | VirtioFeatures.eventIdx | VirtioFeatures.indirectDesc | VirtioFeatures.ringPacked
            | VirtioNet.Feature.mac | VirtioNet.Feature.mtu | VirtioNet.Feature.status
            | VirtioNet.Feature.mergeableRxBuffers | VirtioNet.Feature.ctrlVQ | VirtioNet.Feature.ctrlRX
            | VirtioNet.Feature.ctrlMACAddr | VirtioNet.Feature.guestAnnounce
        if config.queuePairs > 1 { f |= VirtioNet.Feature.multiqueue }
        return f
    }

    /// CONFIGURE_MEM_SLOTS only with one queue pair: QEMU (7.2, as in the
    /// lab) drives a multi-queue vhost-user NIC as one vhost device per pair
    /// over the same socket and sends ADD_MEM_REG from each of them (they are
    /// not among its once-per-connection requests there), so the second pair
    /// re-adds regions the backend already has and the session refuses the
    /// overlap; SET_MEM_TABLE is sent once (by pair 0's device).
    public var protocolFeatures: VhostUserProtocolFeatures {
        var p: VhostUserProtocolFeatures = [.mq, .logSHMFD, .replyAck, .mtu, .backendReq, .config, .resetDevice, .status]
        if config.queuePairs == 1 { p.insert(.configureMemSlots) }
        return p
    }

    /// `struct virtio_net_config`: MAC, link status, pairs, MTU.
    public func configSpace() -> [UInt8] {
        var c = VirtioNetConfig(mac: config.macBytes)
        c.status = isLinkUp ? VirtioNetConfig.statusLinkUp : 0
        c.maxVirtqueuePairs = UInt16(clamping: config.queuePairs)
        c.mtu = UInt16(clamping: mtu)
        return c.serialize()
    }

    /// NET_SET_MTU: at most the network's MTU.
    public func setMTU(_ value: UInt64) throws(VhostUserProtocolError) {
        let limit = UInt64(geometry.mtu)
        guard value >= UInt64(PacketGeometry.minMTU), value <= limit else {
            throw VhostUserProtocolError(request: .netSetMTU, .invalid("MTU \(value) not in \(PacketGeometry.minMTU)...\(limit) (the network's)"))
        }
        setMTUOverride(UInt32(value))
    }

    /// The control queue (§5.1.6.5), on worker 0.
    func control(_ request: VhostUserQueueRequest) {
        let chain = request.chain
        guard let cmd = NetControlCommand.parse(chain) else {
            let ack = chain.writableBytes >= 1 ? chain.writableByte(at: chain.writableBytes - 1) : nil
            // SAFETY: one byte inside a writable segment.
            ack?.storeBytes(of: NetControlCommand.ackError, as: UInt8.self)
            counters.bump(counters.controlRefused)
            request.complete(writtenLength: ack == nil ? 0 : 1)
            return
        }
        let ack = Self.controlAck(cmd, u8: cmd.uint8Argument(in: chain), u16: cmd.uint16Argument(in: chain),
                                  queuePairs: config.queuePairs)
        if ack == NetControlCommand.ackOK { counters.bump(counters.controlOK) } else { counters.bump(counters.controlRefused) }
        cmd.acknowledge(chain, ack: ack)
        request.complete(writtenLength: 1)
    }

    /// The answer to a control command. A switch port receives what the
    /// switch sends it, so RX modes and MAC filters are acked (the guest
    /// filters what it does not want); VQ_PAIRS_SET is acked within 1...pairs.
    static func controlAck(_ cmd: NetControlCommand, u8: UInt8?, u16: UInt16?, queuePairs: Int) -> UInt8 {
        typealias C = NetControlCommand.Class
        let ok = NetControlCommand.ackOK, err = NetControlCommand.ackError
        switch (cmd.commandClass, cmd.command) {
        case (C.rx, C.rxPromisc...C.rxNoBcast):
            return u8.map { $0 <= 1 } == true ? ok : err
        case (C.mac, C.macTableSet):
            return cmd.dataLength >= 8 ? ok : err       // two le32 entry counts at least
        case (C.mac, C.macAddrSet):
            return cmd.dataLength == 6 ? ok : err
        case (C.mq, C.mqVQPairsSet):
            guard let n = u16 else { return err }
            return n >= 1 && Int(n) <= queuePairs ? ok : err
        case (C.announce, C.announceAck):
            return ok
        default:
            return err
        }
    }
}
