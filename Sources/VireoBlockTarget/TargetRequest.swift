import VireoWire

/// Where one command is in its life on the target. One request slot walks
/// these states in `TargetQueue.process(_:)`; a slot waits only in the states
/// marked "waits".
enum TargetRequestState: UInt8 {
    /// No command: the slot is on the free list.
    case free
    /// A capsule was parsed into the slot (or refused: its status says why); nothing is decided yet.
    case received
    /// A WRITE with segments whose RDMA READs are not posted yet (waits: send-queue room).
    case readyToTransfer
    /// RDMA READs of the guest's segments (into the bounce buffer, or straight into a
    /// registered memory export) are in flight (waits: last READ's completion).
    case transferringFromHost
    /// Data (if any) is in the bounce buffer; the storage operation has not started.
    case readyToExecute
    /// A storage operation is in flight: io_uring's, or librbd's (waits: its completion).
    case executing
    /// An RBD operation the cluster failed, to be started again on the worker's next tick while
    /// the export's io_timeout has not run out since the command arrived (waits: the tick).
    case waitingToRetry
    /// A memory export's large DISCARD/WRITE_ZEROES, zeroed one bounded chunk per worker
    /// loop turn between other connections' work (waits: `TargetQueue.stepZeroing()`).
    case zeroing
    /// The status is known and any READ/GET_ID data is in the bounce buffer;
    /// nothing is posted yet (waits: send-queue room for data WRITEs + response).
    case readyToComplete
    /// The RDMA WRITEs (if any) and the response SEND are posted (waits: the SEND's completion,
    /// after which the bounce buffer may be reused).
    case completing
}

/// How WRITE_ZEROES is being carried out on a file or device.
enum ZeroingMode: UInt8 {
    /// fallocate(ZERO_RANGE).
    case zeroRange
    /// fallocate(PUNCH_HOLE|KEEP_SIZE) (a regular file reads zeroes back).
    case punchHole
    /// Plain writes of a zeroed bounce buffer, chunk by chunk.
    case writeZeroes
}

/// One command slot of a connection, preallocated; the command's capsule stays
/// in its receive buffer until the response is posted.
struct TargetRequest {
    var state: TargetRequestState = .free
    /// The receive buffer holding the capsule (given back just before the response; -1: none held).
    var receiveIndex: Int = -1
    var capsule: CommandCapsule?
    /// The failure tag/status when the capsule was refused, or the command's outcome.
    var tag: UInt32 = 0
    var status: BlockStatus = .ok
    /// Send-queue entries this request holds until its signaled completion.
    var sendQueueHeld: Int = 0
    /// Bytes of the storage operation done so far (short reads/writes, chunked zeroing).
    var progress: UInt32 = 0
    var zeroing: ZeroingMode = .zeroRange
    /// Whether the response carries data WRITEs (READ, GET_ID).
    var hasData: Bool = false
    /// READ/WRITE data moves by RDMA straight from or into a registered memory export
    /// (no bounce buffer, no copy); otherwise it goes through this slot's bounce buffer.
    var direct: Bool = false
    /// When the capsule was taken into this slot (monotonic ns): its latency's start.
    var startedAt: UInt64 = 0
}
