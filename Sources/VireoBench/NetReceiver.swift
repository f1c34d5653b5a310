import Synchronization
import VireoSys

/// The receiving side: keeps every RX buffer of its NIC posted, and as used
/// entries arrive checks each frame (`NetFrameLayout.check`: length,
/// addresses, header, trailer; sequence numbers must rise, gaps are loss),
/// counts it and posts the buffer again; poll-then-sleep on the call eventfd.
///
/// Runs on one OS thread (`run`); counters are read by other threads.
/// Nothing in the loop allocates.
final class NetReceiver: @unchecked Sendable {
    // SAFETY (Sendable): everything but the atomics is touched by the run thread only.

    let port: NetPort
    /// Valid data frames and their Ethernet bytes.
    let frames = Atomic<UInt64>(0)
    let bytes = Atomic<UInt64>(0)
    /// Data frames that are wrong (length, addresses, header, trailer).
    let corrupt = Atomic<UInt64>(0)
    /// Data frames whose sequence number did not rise (duplicate or reordered).
    let outOfOrder = Atomic<UInt64>(0)
    /// Frames that are not load-generator data (other EtherType, hello, floods).
    let foreign = Atomic<UInt64>(0)
    /// Data frames missing between received sequence numbers.
    let gaps = Atomic<UInt64>(0)
    private let source: UInt64
    private let spinNanoseconds: UInt64
    private var lastSequence: UInt64 = 0

    init(port: NetPort, source: UInt64, spinNanoseconds: UInt64) {
        self.port = port
        self.source = source
        self.spinNanoseconds = spinNanoseconds
    }

    /// Receives until `stop` is set (the buffers were posted before).
    func run(stop: borrowing Atomic<Bool>) {
        let rx = port.rx
        let frameBytes = port.frameBytes, capacity = port.rxBufferBytes
        let dst = port.mac, src = source
        let payload = UInt64(frameBytes)
        var good: UInt64 = 0, bad: UInt64 = 0, reordered: UInt64 = 0, other: UInt64 = 0, missing: UInt64 = 0
        while !stop.load(ordering: .relaxed) {
            var n = rx.pending
            if n == 0 {
                rx.waitForUsed(threshold: 1, spinNanoseconds: spinNanoseconds, timeoutMilliseconds: 20, stop: stop)
                continue
            }
            let before = (good, bad, reordered, other)
            while n > 0 {
                let u = rx.reap()
                if u.id < rx.size {
                    switch NetFrameLayout.check(port.rxBuffer(u.id), length: Int(u.length), capacity: capacity,
                                                frameBytes: frameBytes, dst: dst, src: src) {
                    case .data(let seq):
                        good &+= 1
                        if seq > lastSequence {
                            missing &+= seq &- lastSequence &- 1
                            lastSequence = seq
                        } else {
                            reordered &+= 1
                        }
                    case .foreign: other &+= 1
                    case .corrupt: bad &+= 1
                    }
                    rx.post(u.id)
                } else {
                    bad &+= 1  // the device named a chain that does not exist
                }
                n -= 1
            }
            rx.publish()
            if good != before.0 {
                frames.store(good, ordering: .relaxed)
                bytes.store(good &* payload, ordering: .relaxed)
                gaps.store(missing, ordering: .relaxed)
            }
            if bad != before.1 { corrupt.store(bad, ordering: .relaxed) }
            if reordered != before.2 { outOfOrder.store(reordered, ordering: .relaxed) }
            if other != before.3 { foreign.store(other, ordering: .relaxed) }
        }
    }
}
