/// What a device worker needs from a virtqueue, split or packed: generic code
/// (`func run<Q: DeviceQueue>(_ q: Q)`) specializes without existential cost.
public protocol DeviceQueue: AnyObject {
    /// Number of descriptors.
    var size: UInt16 { get }
    /// The memory table buffers are translated through.
    var memory: GuestMemory { get }
    /// Whether the ring was found corrupt.
    var isBroken: Bool { get }
    /// Why, if broken.
    var brokenReason: QueueBrokenReason? { get }
    /// Hot-path statistics.
    var counters: QueueCounters { get }
    /// vhost-user GET_VRING_BASE value.
    var vringBase: UInt32 { get }

    /// Whether chains are available (throws `.queueBroken` on a corrupt ring).
    func hasAvailable() throws(VirtqueueError) -> Bool
    /// Takes the next available chain into `chain`; false when empty.
    /// On `.badRequest` the chain's `token` is valid: complete it with length 0.
    func popAvail(into chain: Chain) throws(VirtqueueError) -> Bool
    /// Writes a used element without publishing it.
    func addUsed(_ token: UsedToken, length: UInt32)
    /// Publishes the used elements added so far (release).
    func publishUsed()
    /// `addUsed` + `publishUsed`.
    func pushUsed(_ token: UsedToken, length: UInt32)
    /// Whether to signal the driver (call eventfd) after publishing.
    func needsNotification() -> Bool
    /// Requests kicks; true means buffers arrived meanwhile (poll again).
    func enableKickNotifications() -> Bool
    /// Suppresses kicks while polling.
    func disableKickNotifications()
    /// Switches to a new memory table; marks the queue broken if the rings are no longer mapped.
    func replaceMemory(_ newMemory: GuestMemory) throws(QueueSetupError)
}
