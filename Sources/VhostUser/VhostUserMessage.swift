/// A validated front-end request. Descriptors that came with it are held
/// separately (`ReceivedFileDescriptors`); the parser only checks their count.
public enum VhostUserMessage: Sendable, Equatable {
    case getFeatures
    case setFeatures(UInt64)
    case getProtocolFeatures
    case setProtocolFeatures(UInt64)
    case setOwner
    case resetOwner
    /// One fd per region, in order.
    case setMemTable([VhostUserMemoryRegionDescriptor])
    /// One fd: the log shared memory.
    case setLogBase(VhostUserLogDescriptor)
    /// One fd.
    case setLogFD
    case setVringNum(VhostUserVringState)
    case setVringAddr(VhostUserVringAddress)
    case setVringBase(VhostUserVringState)
    case getVringBase(VhostUserVringState)
    /// One fd unless `noFD`.
    case setVringKick(VhostUserVringFile)
    case setVringCall(VhostUserVringFile)
    case setVringErr(VhostUserVringFile)
    case getQueueNum
    case setVringEnable(VhostUserVringState)
    /// The guest's MAC (first six bytes of the u64).
    case sendRARP([UInt8])
    case netSetMTU(UInt64)
    /// One fd: the back-end request channel.
    case setBackendReqFD
    case getConfig(VhostUserConfigPayload)
    case setConfig(VhostUserConfigPayload)
    case getInflightFD(VhostUserInflightDescriptor)
    /// One fd.
    case setInflightFD(VhostUserInflightDescriptor)
    case resetDevice
    case getMaxMemSlots
    /// One fd.
    case addMemReg(VhostUserMemoryRegionDescriptor)
    /// Zero or one fd (older QEMU sent one; it is closed).
    case remMemReg(VhostUserMemoryRegionDescriptor)
    case setStatus(UInt64)
    case getStatus

    /// The request code of this message.
    public var request: VhostUserRequest {
        switch self {
        case .getFeatures: .getFeatures
        case .setFeatures: .setFeatures
        case .getProtocolFeatures: .getProtocolFeatures
        case .setProtocolFeatures: .setProtocolFeatures
        case .setOwner: .setOwner
        case .resetOwner: .resetOwner
        case .setMemTable: .setMemTable
        case .setLogBase: .setLogBase
        case .setLogFD: .setLogFD
        case .setVringNum: .setVringNum
        case .setVringAddr: .setVringAddr
        case .setVringBase: .setVringBase
        case .getVringBase: .getVringBase
        case .setVringKick: .setVringKick
        case .setVringCall: .setVringCall
        case .setVringErr: .setVringErr
        case .getQueueNum: .getQueueNum
        case .setVringEnable: .setVringEnable
        case .sendRARP: .sendRARP
        case .netSetMTU: .netSetMTU
        case .setBackendReqFD: .setBackendReqFD
        case .getConfig: .getConfig
        case .setConfig: .setConfig
        case .getInflightFD: .getInflightFD
        case .setInflightFD: .setInflightFD
        case .resetDevice: .resetDevice
        case .getMaxMemSlots: .getMaxMemSlots
        case .addMemReg: .addMemReg
        case .remMemReg: .remMemReg
        case .setStatus: .setStatus
        case .getStatus: .getStatus
        }
    }

    /// Whether the request has its own reply (so REPLY_ACK does not add one).
    public var hasReply: Bool {
        switch self {
        case .getFeatures, .getProtocolFeatures, .getVringBase, .getQueueNum, .getConfig,
             .getInflightFD, .getMaxMemSlots, .getStatus, .setLogBase:
            true
        default:
            false
        }
    }
}
