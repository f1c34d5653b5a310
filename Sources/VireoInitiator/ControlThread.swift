import Synchronization
import VireoSys

/// A control-plane thread that runs until it is stopped: the thread, its stop flag and
/// the event that wakes it from its wait (a device's fabric supervisor, a disk's path
/// prober). Its body polls `isStopping` and waits on `wake`.
final class ControlThread: @unchecked Sendable {
    // SAFETY (Sendable): `thread` is set by start and cleared by stop, on the owner's thread.
    let wake: EventBox
    private let stopping = Atomic<Bool>(false)
    private var thread: OSThread?

    init(wake: EventBox) { self.wake = wake }

    /// Whether `stop` was called.
    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    func start(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) {
        thread = try OSThread(name: name, body)
    }

    /// Sets the flag, wakes the thread and joins it.
    func stop() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        thread?.join()
        thread = nil
    }
}
