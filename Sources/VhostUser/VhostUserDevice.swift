import Virtio

/// Virtio device IDs (virtio 1.x §5) this back-end serves.
public enum VirtioDeviceType: UInt32, Sendable {
    case net = 1
    case block = 2
}

/// A device behind a vhost-user socket: what it offers and how it handles
/// requests. The runtime calls `handle` on a queue worker thread (an OS
/// thread, never a Swift task) with a popped chain; the device completes it
/// with `VhostUserQueueRequest.complete(writtenLength:)` on that same worker
/// thread, either inside `handle` or later from `poll(worker:)` (e.g. when an
/// RDMA completion arrives).
public protocol VhostUserDevice: AnyObject, Sendable {
    /// Virtio device type.
    var deviceType: VirtioDeviceType { get }
    /// Virtio feature bits offered (device and transport bits such as
    /// VERSION_1, EVENT_IDX, INDIRECT_DESC). The runtime adds
    /// `VHOST_USER_F_PROTOCOL_FEATURES` and, with LOG_SHMFD, `VHOST_F_LOG_ALL`.
    var features: UInt64 { get }
    /// Protocol features this device wants offered (intersected with `VhostUserProtocolFeatures.supported`).
    var protocolFeatures: VhostUserProtocolFeatures { get }
    /// Number of virtqueues (GET_QUEUE_NUM).
    var queueCount: Int { get }
    /// Largest queue size accepted by SET_VRING_NUM.
    var maxQueueSize: UInt16 { get }
    /// Queue worker threads; queue `q` runs on worker `q % workerCount`.
    var workerCount: Int { get }

    /// Which worker serves queue `q` (taken modulo `workerCount`). Queues
    /// that must be used together (a net RX/TX pair) belong on one worker.
    func worker(forQueue q: Int) -> Int
    /// Queues the worker does not pop on its own: the device takes their
    /// chains when it needs one (`VhostUserQueueRequest.takeRequest(fromQueue:)`),
    /// e.g. virtio-net RX buffers, filled when a frame arrives.
    func isPulledOnDemand(queue: Int) -> Bool
    /// The device configuration space (GET_CONFIG reads a window of it).
    func configSpace() -> [UInt8]
    /// SET_CONFIG: the front-end writes `data` at `offset`. Throw to refuse.
    func writeConfig(offset: UInt32, data: [UInt8]) throws(VhostUserProtocolError)
    /// SET_FEATURES accepted these bits. Called while every queue worker is parked,
    /// so a device may keep them in a plain field its workers read.
    func featuresNegotiated(_ features: UInt64)
    /// A popped request (worker thread). Complete it exactly once.
    func handle(_ request: VhostUserQueueRequest)
    /// Called on each worker loop iteration; completes asynchronously finished
    /// requests. Returns how many it completed (0 lets the worker go idle).
    func poll(worker: Int) -> Int
    /// Guest memory regions were mapped (e.g. register them with an RNIC).
    /// The host range stays valid until `memoryRegionsRemoved` names it.
    func memoryRegionsAdded(_ regions: [GuestMemory.Region])
    /// Regions are about to be unmapped; queues are already quiesced.
    func memoryRegionsRemoved(_ regions: [GuestMemory.Region])
    /// NET_SET_MTU. Throw to refuse.
    func setMTU(_ mtu: UInt64) throws(VhostUserProtocolError)
    /// SEND_RARP: announce `mac` (after migration).
    func sendRARP(mac: [UInt8])
    /// The front-end disconnected or reset the device: forget requests that
    /// were handed out and not completed (their completion is ignored).
    func connectionClosed()
    /// Extra descriptors worker `worker` sleeps on besides its kick eventfds
    /// (e.g. an RDMA completion channel). Asked when the worker (re)builds its
    /// wait set; they must stay open while the device lives.
    func wakeDescriptors(worker: Int) -> [Int32]
    /// Worker `worker` is about to sleep: arm whatever raises the wake
    /// descriptors (e.g. request a CQ notification) and return true if work
    /// arrived meanwhile (the worker then keeps polling instead of sleeping).
    func prepareToSleep(worker: Int) -> Bool
    /// How many chains the worker may pop from queue `queue` now (asked each
    /// loop iteration for rings the worker pops). 0 leaves the chains in the
    /// ring, and the worker does not ask for that ring's kicks before sleeping
    /// (the device wakes it through `wakeDescriptors` when it can take more,
    /// e.g. when transmit credits return). Default: no limit.
    func admissionBudget(queue: Int) -> Int
    /// Worker `worker` is about to park (drain, then hand its rings to the
    /// control thread). A device that holds chains indefinitely (e.g. virtio-net
    /// receive buffers posted to an RNIC) must give them back here, or later
    /// from `poll`, so that the drain can finish.
    func willPark(worker: Int)
    /// The drain before a park ran out of time with requests of `worker`
    /// still out (a stalled or unreachable target, stuck storage). No stop,
    /// reset or memory change may be answered while anything can still touch
    /// their guest memory, so the device must cut them off now (move its
    /// queue pairs to error and reap the flushes, or disconnect) and complete
    /// every one of them (IOERR) through `complete`, while their rings still
    /// exist. It must never replay them later: after the park the guest's
    /// memory may mean something else. Default: nothing (a device that
    /// completes synchronously never needs it).
    func abortOutstanding(worker: Int)
    /// Whether worker `worker` should wake every millisecond to `poll` while
    /// requests are out with the device (default true). A device whose wake
    /// descriptors signal everything it waits for, and that holds requests
    /// for long (e.g. posted receive buffers), returns false so that an idle
    /// worker really sleeps.
    func needsTimedPolling(worker: Int) -> Bool
    /// A file for the back-end's own inflight record (`RestartRecord`), used
    /// when the front-end sends no INFLIGHT_SHMFD region (QEMU's
    /// vhost-user-net never does), so that a restarted back-end knows what
    /// its predecessor had in flight. Default nil: none.
    var restartRecordPath: String? { get }
}

extension VhostUserDevice {
    public var protocolFeatures: VhostUserProtocolFeatures { .supported }
    public var workerCount: Int { 1 }
    public func worker(forQueue q: Int) -> Int { q }
    public func isPulledOnDemand(queue: Int) -> Bool { false }
    public func writeConfig(offset: UInt32, data: [UInt8]) throws(VhostUserProtocolError) {
        throw VhostUserProtocolError(request: .setConfig, .failed("configuration space is read-only"))
    }
    public func featuresNegotiated(_ features: UInt64) {}
    public func poll(worker: Int) -> Int { 0 }
    public func memoryRegionsAdded(_ regions: [GuestMemory.Region]) {}
    public func memoryRegionsRemoved(_ regions: [GuestMemory.Region]) {}
    public func setMTU(_ mtu: UInt64) throws(VhostUserProtocolError) {
        throw VhostUserProtocolError(request: .netSetMTU, .failed("device has no MTU"))
    }
    public func sendRARP(mac: [UInt8]) {}
    public func connectionClosed() {}
    public func wakeDescriptors(worker: Int) -> [Int32] { [] }
    public func prepareToSleep(worker: Int) -> Bool { false }
    public func admissionBudget(queue: Int) -> Int { .max }
    public func willPark(worker: Int) {}
    public func abortOutstanding(worker: Int) {}
    public func needsTimedPolling(worker: Int) -> Bool { true }
    public var restartRecordPath: String? { nil }
}
