import VireoFabric

/// The target's work-request kinds (the id layout is `VireoFabric.WorkID`'s):
/// the block target uses 1-6 and 11, the packet target 8-10, both 7 (the handshake).
extension WorkID {
    /// A receive buffer got a capsule (index: receive buffer).
    public static let receive: UInt64 = 1
    /// The last RDMA READ of a WRITE's segments (index: request slot).
    public static let transfer: UInt64 = 2
    /// A response SEND (index: request slot).
    public static let response: UInt64 = 3
    /// An unsignaled RDMA WRITE of READ data (index: request slot; completes only on error).
    public static let data: UInt64 = 4
    /// An io_uring storage operation (index: request slot).
    public static let storage: UInt64 = 5
    /// A zero-length RDMA WRITE probing an idle peer (no buffer; index 0).
    public static let probe: UInt64 = 6
    /// The handshake result's RDMA WRITE into the initiator's mailbox (index 0; `ConnectionHandshake`).
    public static let handshake: UInt64 = 7
    /// Packet target: a receive buffer got a frame or a credit message (index: receive buffer).
    public static let packetReceive: UInt64 = 8
    /// Packet target: a frame SEND (index: send buffer).
    public static let packetSend: UInt64 = 9
    /// Packet target: a credit-only SEND (no buffer).
    public static let packetCredit: UInt64 = 10
    /// A receive of a worker's shared receive queue got a capsule (index: buffer; no queue
    /// slot or generation: the completion's queue-pair number names the connection).
    public static let sharedReceive: UInt64 = 11
}
