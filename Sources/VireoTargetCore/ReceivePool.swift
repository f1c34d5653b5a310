import VireoFabric
import VireoSys

/// Registered receive buffers and where they are posted: one connection's own
/// (posted on its queue pair, ids naming the connection's table slot), or one
/// worker's shared pool (posted on a `SharedReceiveQueue`, ids naming only the
/// buffer: the completion's queue-pair number names the connection).
///
/// A buffer is the RNIC's while posted, then the engine's that took its receive
/// until it gives it back (`giveBack`): a command capsule is parsed in place, and
/// inline write data is stored from it. Given-back buffers are batched and posted
/// by `flush`, one call per batch. Allocated once; nothing on the data path allocates.
package final class ReceivePool: @unchecked Sendable {
    // SAFETY: used by one thread at a time (built by the control plane, then its worker's).
    /// Bytes per buffer.
    package let bufferSize: Int
    /// Buffers in the pool.
    package let count: Int
    /// Whether it serves many connections (a shared receive queue).
    package let isShared: Bool
    private var buffers: RegisteredBuffer?
    private let poster: any ReceivePoster
    private let batch: RecvBatch
    /// The id of buffer 0: a connection's slot, generation and `WorkID.receive`, or `WorkID.sharedReceive`.
    private var idBase: UInt64
    /// Buffers the engines hold (taken, not given back): the shared pool's use.
    package private(set) var held = 0
    /// The most buffers ever held at once.
    package private(set) var mostHeld = 0

    /// Registers `count` buffers of `bufferSize` bytes with `registrar`, posted to `poster`
    /// (a queue pair's work queue, or with `shared` a shared receive queue). Nothing is posted
    /// until `fill` or `name(queue:generation:)`.
    package init(registrar: any MemoryRegistrar, count: Int, bufferSize: Int, poster: any ReceivePoster,
                 shared: Bool) throws(FabricError) {
        guard count > 0, count <= 1 << 16, bufferSize > 0, bufferSize <= Int(UInt32.max) else {
            throw .invalidArgument(call: "receive pool", "\(count) buffers of \(bufferSize) bytes (1-65536 buffers)")
        }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: bufferSize)
        guard !overflow else { throw .invalidArgument(call: "receive pool", "\(count) × \(bufferSize) bytes overflows") }
        buffers = try RegisteredBuffer(pd: registrar, count: bytes, access: [.localWrite])
        self.bufferSize = bufferSize
        self.count = count
        self.poster = poster
        isShared = shared
        batch = RecvBatch(capacity: count)
        idBase = WorkID.make(queue: 0, generation: 0, kind: shared ? WorkID.sharedReceive : WorkID.receive, index: 0)
    }

    /// A connection's own pool: its ids name the connection's table slot and generation from
    /// now on; every buffer is batched for posting (posted by the next `flush`).
    package func name(queue: Int, generation: UInt16) {
        idBase = WorkID.make(queue: queue, generation: generation, kind: WorkID.receive, index: 0)
        fill()
    }

    /// Batches every buffer for posting (a new pool; the next `flush` posts them).
    package func fill() {
        batch.reset()
        held = 0
        for i in 0..<count { append(i) }
    }

    /// The bytes of buffer `index` (< `count`: ids this pool made).
    @inline(__always)
    package func bytes(_ index: Int) -> UnsafeMutableRawPointer {
        // SAFETY: index < count, so the buffer lies inside the registered allocation.
        buffers!.bytes.baseAddress! + index * bufferSize
    }

    /// An engine took buffer `index`'s receive (a completion named it).
    @inline(__always)
    package func took(_ index: Int) {
        held += 1
        if held > mostHeld { mostHeld = held }
    }

    /// The engine is done with buffer `index`: it is batched for posting.
    @inline(__always)
    package func giveBack(_ index: Int) {
        held -= 1
        append(index)
    }

    @inline(__always)
    private func append(_ index: Int) {
        batch.receive(wrId: idBase | UInt64(truncatingIfNeeded: index & 0xffff),
                      local: buffers!.region.segment(offset: index * bufferSize, length: bufferSize))
    }

    /// Buffers are batched for posting.
    @inline(__always)
    package var needsFlush: Bool { !batch.isEmpty }

    /// Posts the batched buffers in one call (counted in `costs`); on failure they are not
    /// posted and the error names the call.
    @inline(__always)
    package func flush(costs: DataPathCosts) throws(FabricError) {
        do { try poster.post(batch, costs: costs) } catch {
            batch.reset()
            throw error
        }
    }

    /// Forgets what is batched (the queue pair is going).
    package func discardBatch() { batch.reset() }

    /// Releases the buffers (after the queue pairs that could write them are gone).
    package func release() { buffers = nil }
}
