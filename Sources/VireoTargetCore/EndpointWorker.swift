import Logging
import Synchronization
import VireoSys

/// What one target data-path thread does, plugged into `EndpointWorker`'s loop:
/// the block target's workers and each packet network supply one.
public protocol EndpointEngine: AnyObject, Sendable {
    /// What the control plane hands over: a block queue, a packet port.
    associatedtype Connection: AnyObject & Sendable
    /// One pass over the completion queue and the engine's other sources; returns the
    /// events handled (0: idle). `beforeSleep`: the loop is about to sleep, so flush
    /// anything a peer may be waiting for (credits).
    func pollOnce(beforeSleep: Bool) -> Int
    /// Arms completion notifications (the loop then polls once more, then sleeps).
    func arm()
    /// After a sleep: takes the completion channel's events and drains the engine's fds
    /// that fired (`isReady(i)`: the i-th of the fds given to `EndpointWorker.init`; a read of
    /// one that did not fire would be a wasted system call).
    func woke(isReady: (Int) -> Bool)
    /// Connections the control plane handed over, and ones whose peer it saw disconnect.
    func take(adopted: [Connection], dropped: [Connection])
    /// The liveness tick, about once per `EndpointWorker.tickNanoseconds` (never per I/O).
    func tick(now: UInt64)
    /// The loop has stopped: finish what must not be abandoned (storage I/O in flight).
    func finish()
}

/// The skeleton every target data-path thread shares: one OS thread, the
/// hand-off from the control plane (a locked list and a wake eventfd), the
/// spin → arm → sleep loop (poll-then-sleep by default, `busyPoll` never
/// sleeps), and the liveness tick's clock. The engine says what a pass does.
///
/// Threading: `adopt`, `requestDrop` and `stop` are the control plane's; all
/// the rest runs on the thread.
public final class EndpointWorker<Engine: EndpointEngine>: @unchecked Sendable {
    // SAFETY: `pending` is behind its lock, the flags are atomics; `poller`,
    // `lastTick` and `thread` are touched by the worker thread only while it
    // runs, and by the control plane only before `start` and after `stop`
    // joined the thread.
    public let name: String
    /// Nanoseconds between liveness ticks (and the longest sleep).
    public let tickNanoseconds: UInt64
    private let spinBudget: Int
    /// Sleeps and wake drains are counted here, with the engine's own costs.
    private let costs: DataPathCosts
    private let wake: EventFD
    private let poller: Poller
    /// The wake fd's poller slot (after the engine's fds).
    private let wakeSlot: Int
    private let pending = Locked<(adopted: [Engine.Connection], dropped: [Engine.Connection])>(([], []))
    private let hint = Atomic<Bool>(false)
    private let stopFlag = Atomic<Bool>(false)
    private var lastTick: UInt64 = 0
    private var thread: OSThread?

    /// `fds`: the engine's own fds to sleep on (its completion channel, an io_uring eventfd, a TAP);
    /// `tickNanoseconds`: how often the engine's `tick` runs (at most once a second).
    /// `costs`: where the loop counts its sleeps and wake reads (the engine's own instance).
    public init(name: String, busyPoll: Bool, tickNanoseconds: UInt64, fds: [Int32], costs: DataPathCosts) throws(SystemError) {
        self.name = name
        self.costs = costs
        self.tickNanoseconds = min(1_000_000_000, max(tickNanoseconds, 1_000_000))
        spinBudget = busyPoll ? Int.max : 100
        wake = try EventFD()
        poller = Poller(capacity: fds.count + 1)
        for fd in fds { _ = poller.add(fd) }
        wakeSlot = poller.add(wake.rawValue)
    }

    /// Starts the thread running `engine` (the worker holds it until `stop`).
    public func start(_ engine: Engine, logger: Logger) throws(SystemError) {
        thread = try OSThread(name: name) { [self] in run(engine, logger: logger) }
    }

    public var isStarted: Bool { thread != nil }

    /// Hands a connection to the thread (control plane).
    public func adopt(_ c: Engine.Connection) {
        pending.withLock { $0.adopted.append(c) }
        hint.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Asks the thread to drop `c`: the control plane saw its peer disconnect.
    public func requestDrop(_ c: Engine.Connection) {
        pending.withLock { $0.dropped.append(c) }
        hint.store(true, ordering: .releasing)
        wake.signal()
    }

    /// Stops and joins the thread; returns the connections handed over but never taken.
    public func stop() -> [Engine.Connection] {
        stopFlag.store(true, ordering: .releasing)
        wake.signal()
        thread?.join()
        thread = nil
        return pending.withLock { p in
            let left = p.adopted
            p = ([], [])
            return left
        }
    }

    private func run(_ engine: Engine, logger: Logger) {
        var idle = 0
        var turns: UInt = 0
        let sleepMilliseconds = Int32(tickNanoseconds / 1_000_000)
        while !stopFlag.load(ordering: .acquiring) {
            if hint.load(ordering: .acquiring) { takePending(engine) }
            turns &+= 1
            if turns & 1023 == 0 { tickIfDue(engine) }
            var work = engine.pollOnce(beforeSleep: false)
            if work > 0 { idle = 0; continue }
            idle += 1
            if idle < spinBudget { continue }
            // Sleep: flush, arm, look once more (a completion may have landed before arming), then wait.
            work = engine.pollOnce(beforeSleep: true)
            if work > 0 { idle = 0; continue }
            engine.arm()
            work = engine.pollOnce(beforeSleep: true)
            if work > 0 { idle = 0; continue }
            do { _ = try poller.wait(timeoutMilliseconds: sleepMilliseconds) } catch { logger.error("\(name): \(error)") }
            costs.count(.sleeps)
            engine.woke(isReady: poller.isReady)
            if poller.isReady(wakeSlot) {
                _ = wake.drain()
                costs.count(.eventfdReads)
            }
            tickIfDue(engine)
            idle = 0
        }
        engine.finish()
    }

    private func takePending(_ engine: Engine) {
        hint.store(false, ordering: .releasing)
        let (adopted, dropped) = pending.withLock { p in
            let taken = p
            p.adopted.removeAll(keepingCapacity: true)
            p.dropped.removeAll(keepingCapacity: true)
            return taken
        }
        engine.take(adopted: adopted, dropped: dropped)
    }

    @inline(__always)
    private func tickIfDue(_ engine: Engine) {
        let now = monotonicNanoseconds()
        guard now &- lastTick >= tickNanoseconds else { return }
        lastTick = now
        engine.tick(now: now)
    }
}
