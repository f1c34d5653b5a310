#if canImport(Glibc)
import Glibc
#endif

/// Settings of a `VhostUserServer` and its sessions.
public struct VhostUserOptions: Sendable {
    /// `chmod` applied to the socket file (nil: leave the umask's).
    public var socketMode: mode_t?
    /// Slots reported by GET_MAX_MEM_SLOTS (≥ 32) and the limit for ADD_MEM_REG.
    public var maxMemorySlots: Int
    /// Queue worker polling policy.
    public var polling: VhostUserPollingOptions
    /// How long a quiesce waits for the device to complete requests it holds.
    public var drainTimeoutNanoseconds: UInt64
    /// How long a quiesce waits for a queue worker to park (drain and abort
    /// included) before it fails the connection as wedged.
    public var parkTimeoutNanoseconds: UInt64 = 30_000_000_000
    /// How long a front-end may take to finish a message it began.
    public var partialMessageTimeoutMilliseconds: Int32 = 5000
    /// Whether completions dirty-log what they wrote into guest buffers while
    /// a migration's LOG_ALL is on (data the target RDMA-wrote for a disk
    /// read, frames received). Always true in service: false is a test
    /// switch (`vireo-initiator serve --test-unlogged-device-writes`) that
    /// proves the migration test sees the stale data it guards against.
    public var logsDeviceWrites = true

    public init(socketMode: mode_t? = nil, maxMemorySlots: Int = 32,
                polling: VhostUserPollingOptions = VhostUserPollingOptions(),
                drainTimeoutNanoseconds: UInt64 = 5_000_000_000) {
        self.socketMode = socketMode
        self.maxMemorySlots = max(VhostUserMessage.maxMemTableRegions, maxMemorySlots)
        self.polling = polling
        self.drainTimeoutNanoseconds = drainTimeoutNanoseconds
    }
}
