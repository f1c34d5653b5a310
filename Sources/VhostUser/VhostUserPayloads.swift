// Fixed-layout payloads of vhost-user messages (all little endian).

/// `struct vhost_vring_state`: a ring index and a number (size, base, enable).
public struct VhostUserVringState: Sendable, Equatable {
    public static let wireSize = 8
    public var index: UInt32
    public var num: UInt32
    public init(index: UInt32, num: UInt32) { self.index = index; self.num = num }

    init(_ p: UnsafeRawBufferPointer) { index = p.le(0); num = p.le(4) }

    public func encode(into out: inout [UInt8]) { out.appendLE(index); out.appendLE(num) }
}

/// `struct vhost_vring_addr`: ring addresses in the front-end's virtual address space.
public struct VhostUserVringAddress: Sendable, Equatable {
    public static let wireSize = 40
    /// `VHOST_VRING_F_LOG`: log writes to the used ring at `logGuestAddress`.
    public static let flagLog: UInt32 = 1
    public var index: UInt32
    public var flags: UInt32
    public var descriptorTable: UInt64
    public var usedRing: UInt64
    public var availableRing: UInt64
    public var logGuestAddress: UInt64

    public init(index: UInt32, flags: UInt32 = 0, descriptorTable: UInt64, usedRing: UInt64,
                availableRing: UInt64, logGuestAddress: UInt64 = 0) {
        self.index = index; self.flags = flags; self.descriptorTable = descriptorTable
        self.usedRing = usedRing; self.availableRing = availableRing; self.logGuestAddress = logGuestAddress
    }

    init(_ p: UnsafeRawBufferPointer) {
        index = p.le(0); flags = p.le(4); descriptorTable = p.le(8)
        usedRing = p.le(16); availableRing = p.le(24); logGuestAddress = p.le(32)
    }

    public func encode(into out: inout [UInt8]) {
        out.appendLE(index); out.appendLE(flags); out.appendLE(descriptorTable)
        out.appendLE(usedRing); out.appendLE(availableRing); out.appendLE(logGuestAddress)
    }
}

/// `VhostUserMemoryRegion`: one guest RAM region backed by the fd sent alongside.
public struct VhostUserMemoryRegionDescriptor: Sendable, Equatable {
    public static let wireSize = 32
    public var guestPhysicalAddress: UInt64
    public var size: UInt64
    public var frontendVirtualAddress: UInt64
    public var mmapOffset: UInt64

    public init(guestPhysicalAddress: UInt64, size: UInt64, frontendVirtualAddress: UInt64, mmapOffset: UInt64 = 0) {
        self.guestPhysicalAddress = guestPhysicalAddress; self.size = size
        self.frontendVirtualAddress = frontendVirtualAddress; self.mmapOffset = mmapOffset
    }

    init(_ p: UnsafeRawBufferPointer) {
        guestPhysicalAddress = p.le(0); size = p.le(8); frontendVirtualAddress = p.le(16); mmapOffset = p.le(24)
    }

    public func encode(into out: inout [UInt8]) {
        out.appendLE(guestPhysicalAddress); out.appendLE(size)
        out.appendLE(frontendVirtualAddress); out.appendLE(mmapOffset)
    }
}

/// `VhostUserLog`: where the dirty log lives in the fd sent with SET_LOG_BASE.
public struct VhostUserLogDescriptor: Sendable, Equatable {
    public static let wireSize = 16
    public var mmapSize: UInt64
    public var mmapOffset: UInt64
    public init(mmapSize: UInt64, mmapOffset: UInt64) { self.mmapSize = mmapSize; self.mmapOffset = mmapOffset }
    init(_ p: UnsafeRawBufferPointer) { mmapSize = p.le(0); mmapOffset = p.le(8) }
    public func encode(into out: inout [UInt8]) { out.appendLE(mmapSize); out.appendLE(mmapOffset) }
}

/// `VhostUserInflight`: the shared inflight-tracking buffer (GET/SET_INFLIGHT_FD).
public struct VhostUserInflightDescriptor: Sendable, Equatable {
    /// `sizeof(VhostUserInflight)` including its 4 bytes of tail padding.
    public static let wireSize = 24
    public var mmapSize: UInt64
    public var mmapOffset: UInt64
    public var numQueues: UInt16
    public var queueSize: UInt16

    public init(mmapSize: UInt64, mmapOffset: UInt64, numQueues: UInt16, queueSize: UInt16) {
        self.mmapSize = mmapSize; self.mmapOffset = mmapOffset; self.numQueues = numQueues; self.queueSize = queueSize
    }

    init(_ p: UnsafeRawBufferPointer) {
        mmapSize = p.le(0); mmapOffset = p.le(8); numQueues = p.le(16); queueSize = p.le(18)
    }

    public func encode(into out: inout [UInt8]) {
        out.appendLE(mmapSize); out.appendLE(mmapOffset); out.appendLE(numQueues); out.appendLE(queueSize)
        out.appendLE(UInt32(0))
    }
}

/// GET/SET_CONFIG: a window into the device configuration space.
public struct VhostUserConfigPayload: Sendable, Equatable {
    /// Header bytes before the data: offset, size, flags.
    public static let headerSize = 12
    /// `VHOST_USER_MAX_CONFIG_SIZE`.
    public static let maxDataSize = 256
    /// `VHOST_SET_CONFIG_TYPE_MIGRATION`.
    public static let flagMigration: UInt32 = 1
    public var offset: UInt32
    public var flags: UInt32
    /// The data (for GET_CONFIG, what the front-end sent: its length is the size asked for).
    public var data: [UInt8]

    public init(offset: UInt32, flags: UInt32 = 0, data: [UInt8]) {
        self.offset = offset; self.flags = flags; self.data = data
    }

    public func encode(into out: inout [UInt8]) {
        out.appendLE(offset); out.appendLE(UInt32(data.count)); out.appendLE(flags); out.append(contentsOf: data)
    }
}

/// The u64 of SET_VRING_KICK/CALL/ERR: ring index in bits 0-7, NOFD in bit 8.
public struct VhostUserVringFile: Sendable, Equatable {
    public static let indexMask: UInt64 = 0xff
    public static let noFDFlag: UInt64 = 0x100
    public var index: UInt32
    /// No descriptor accompanies the message: the ring is polled / not signalled.
    public var noFD: Bool
    public init(index: UInt32, noFD: Bool) { self.index = index; self.noFD = noFD }
    public var rawValue: UInt64 { UInt64(index) | (noFD ? Self.noFDFlag : 0) }
}
