import Synchronization
import VireoSys

/// The transmitting side: keeps the TX ring of its NIC full of frames
/// (sequence numbers from 1) and takes chains back as the device completes
/// them; sleeps on the call eventfd only when the ring is full. Also keeps its
/// own RX ring posted and recycled (floods and the hello frame land there).
///
/// Runs on one OS thread (`run`); counters are read by other threads.
/// Nothing in the loop allocates: free TX ids live in a preallocated stack.
final class NetSender: @unchecked Sendable {
    // SAFETY (Sendable): everything but the atomics is touched by the run thread only.

    let port: NetPort
    /// TX chains the device completed (frames it took).
    let sent = Atomic<UInt64>(0)
    /// Frames that arrived on this NIC (not part of the measurement).
    let received = Atomic<UInt64>(0)
    /// Used entries that name no chain out with the device (a broken device): ignored.
    let bogusCompletions = Atomic<UInt64>(0)
    private let free: UnsafeMutablePointer<UInt16>
    private var freeCount: Int
    private var sequence: UInt64 = 0
    private let spinNanoseconds: UInt64

    init(port: NetPort, destination: UInt64, spinNanoseconds: UInt64) {
        self.port = port
        self.spinNanoseconds = spinNanoseconds
        port.writeTransmitTemplates(dst: destination, magic: NetFrameLayout.dataMagic)
        let size = Int(port.tx.size)
        free = .allocate(capacity: size)
        for i in 0..<size { free[i] = UInt16(size - 1 - i) }
        freeCount = size
    }

    deinit { free.deallocate() }

    /// Sends until `stop` is set.
    func run(stop: borrowing Atomic<Bool>) {
        let tx = port.tx, rx = port.rx
        let frameBytes = port.frameBytes
        let refill = max(1, Int(tx.size) / 2)
        var done: UInt64 = 0, got: UInt64 = 0
        while !stop.load(ordering: .relaxed) {
            var n = tx.pending
            if n > 0 {
                let size = Int(tx.size)
                var bogus: UInt64 = 0
                while n > 0 {
                    let id = tx.reap().id
                    n -= 1
                    // A device may only return chains it holds: never more than size, each id < size.
                    guard id < tx.size, freeCount < size else { bogus &+= 1; continue }
                    // SAFETY: freeCount < size, the stack's capacity.
                    free[freeCount] = id
                    freeCount += 1
                    done &+= 1
                }
                sent.store(done, ordering: .relaxed)
                if bogus > 0 { bogusCompletions.add(bogus, ordering: .relaxed) }
            }
            var r = rx.pending
            if r > 0 {
                got &+= UInt64(r)
                while r > 0 { rx.post(rx.reap().id); r -= 1 }
                rx.publish()
                received.store(got, ordering: .relaxed)
            }
            if freeCount > 0 {
                while freeCount > 0 {
                    freeCount -= 1
                    let id = free[freeCount]
                    sequence &+= 1
                    NetFrameLayout.stamp(port.txBuffer(id), frameBytes: frameBytes, sequence: sequence)
                    tx.post(id)
                }
                tx.publish()
            } else {
                tx.waitForUsed(threshold: refill, spinNanoseconds: spinNanoseconds, timeoutMilliseconds: 20, stop: stop)
            }
        }
    }
}
