import VireoAuth
import VireoFabric
import VireoWire

/// The first step of every target connection, block or packet: the
/// initiator's hello (its first SEND) is checked (`TargetHandshake.verify`),
/// and the result is RDMA-WRITTEN into the mailbox the hello names. Until the
/// hello is accepted the connection serves nothing: any other message first,
/// or no hello by the deadline, and it is dropped. A refused host gets its
/// reason, then the connection is dropped once the write completed.
///
/// Owned by the connection's engine (worker thread); the control plane makes
/// it at accept with the deadline. The 48-byte result buffer is registered
/// with the connection's PD for the connection's life.
package struct ConnectionHandshake {
    /// Waiting for the hello (nil once it came).
    private var pending: TargetHandshake?
    /// Monotonic nanoseconds by which the hello must have come.
    package let deadline: UInt64
    /// The hello was refused: the connection goes once the result write completes.
    package private(set) var refused: (reason: AuthRejectReason, message: String)?
    /// The authenticated host's name (nil until accepted).
    package private(set) var host: String?
    private var buffer: RegisteredBuffer?

    /// `handshake` nil: no handshake on this connection (tests of the engines behind it).
    package init(handshake: TargetHandshake?, deadline: UInt64, registrar: any MemoryRegistrar) throws(FabricError) {
        pending = handshake
        self.deadline = deadline
        if handshake != nil { buffer = try RegisteredBuffer(pd: registrar, count: AuthResult.size, access: [.localWrite]) }
    }

    /// Whether the next receive must be the hello.
    @inline(__always)
    package var awaitingHello: Bool { pending != nil }

    /// Whether the connection may serve commands or frames.
    @inline(__always)
    package var isServing: Bool { pending == nil && refused == nil }

    /// Deregisters the result buffer: after the connection's QP is gone.
    package mutating func release() { buffer = nil }

    /// Whether the deadline passed with no hello.
    package func expired(now: UInt64) -> Bool { pending != nil && now >= deadline }

    /// What the engine does after a hello.
    package enum Step {
        /// Post `batch` (it holds the result's RDMA WRITE); the connection serves from now on.
        case accepted(host: String)
        /// Post `batch`; drop the connection when that write completes.
        case refused(AuthRejectReason, message: String)
        /// Nothing to answer: drop the connection now.
        case broken(String)
    }

    /// Checks the hello in `count` bytes at `p` and appends the result's RDMA WRITE
    /// (signaled, `wrId`) to `batch`.
    package mutating func hello(_ p: UnsafeRawPointer, count: Int, batch: SendBatch, wrId: UInt64) -> Step {
        guard let h = pending, let buffer else { return .broken("a second handshake hello") }
        pending = nil
        let result: [UInt8], address: UInt64, key: UInt32, step: Step
        switch h.verify(p, count: count) {
        case .malformed(let why):
            return .broken(why)
        case .accepted(let name, let r, let a, let k):
            (result, address, key, step) = (r, a, k, .accepted(host: name))
            host = name
        case .rejected(let reason, let message, let r, let a, let k):
            (result, address, key, step) = (r, a, k, .refused(reason, message: message))
            refused = (reason, message)
        }
        // SAFETY: the buffer holds AuthResult.size bytes; result is that long.
        result.withUnsafeBytes { buffer.bytes.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: AuthResult.size) }
        batch.write(wrId: wrId, local: buffer.region.segment(offset: 0, length: AuthResult.size),
                    remoteAddress: address, rkey: key, signaled: true)
        return step
    }
}
