import CVireoVerbs
import VireoSys

/// The active side of the fabric probe: ping-pong latency, RDMA WRITE/READ
/// bandwidth into the server's lent buffer, and a server-side checksum.
public final class FabricProbeClient: @unchecked Sendable {
    // SAFETY: used by one thread at a time (the caller's).
    public let connection: Connection
    /// The server's buffer: remote address, length, rkey.
    public let remoteAddress: UInt64
    public let remoteLength: Int
    public let remoteKey: UInt32
    let messages: RegisteredBuffer
    let busyPoll: Bool
    let wc = CompletionBuffer(capacity: 64)
    let sends: SendBatch
    let recvs = RecvBatch(capacity: 1)
    private var sequence: UInt64 = 0

    /// Connects to a probe server and borrows a buffer of `bufferSize` bytes there.
    public init(
        connectTo address: FabricAddress, bufferSize: Int = 64 << 20, depth: Int = 16, busyPoll: Bool = false,
        timeoutMilliseconds: Int32 = 5000
    ) throws(FabricError) {
        let config = QueuePairConfig(sendDepth: max(depth, 2) + 2, receiveDepth: 4)
        connection = try Connection.connect(
            to: address, resources: ConnectionResources(queuePair: config),
            privateData: FabricProbe.request(bufferSize: bufferSize), timeoutMilliseconds: timeoutMilliseconds)
        let pd = connection.pd
        guard connection.peerPrivateData.count >= 28, Array(connection.peerPrivateData[0..<4]) == FabricProbe.magic
        else { throw .unexpectedEvent(stage: "probe handshake", event: "bad accept data", status: 0) }
        remoteAddress = connection.peerPrivateData.loadLE(UInt64.self, at: 8)
        let len = connection.peerPrivateData.loadLE(UInt64.self, at: 16)
        guard len == UInt64(bufferSize) else {
            throw .unexpectedEvent(stage: "probe handshake", event: "buffer of \(len) bytes, asked \(bufferSize)", status: 0)
        }
        remoteLength = Int(len)
        remoteKey = connection.peerPrivateData.loadLE(UInt32.self, at: 24)
        messages = try RegisteredBuffer(pd: pd, count: 2 * FabricProbe.maxMessage, access: .localWrite)
        sends = SendBatch(capacity: max(depth, 1))
        self.busyPoll = busyPoll
    }

    /// Disconnects.
    public func close() { connection.disconnect() }

    private var spin: Int { busyPoll ? 1_000_000 : 200 }

    /// Waits for exactly one completion from `cq`, failing on error status.
    private func waitOne(_ cq: CompletionQueue) throws(FabricError) -> Completion {
        while true {
            let n = try cq.wait(into: wc, spin: spin, timeoutMilliseconds: 5000)
            if n == 0 { throw .timedOut("waiting for a completion") }
            precondition(n == 1 || cq.capacity > 0)
            let c = wc[0]
            guard c.isSuccess else { throw c.error }
            // Completions beyond the first are unexpected in lock-step use; surface them.
            if n > 1 { for i in 1..<n where !wc[i].isSuccess { throw wc[i].error } }
            return c
        }
    }

    /// One request/response round trip; returns the response length.
    private func roundTrip(kind: UInt8, size: Int) throws(FabricError) -> (Int, UnsafeMutableRawPointer) {
        let out = messages.region.address
        let inbox = messages.region.address + FabricProbe.maxMessage
        sequence &+= 1
        out.storeBytes(of: sequence.littleEndian, as: UInt64.self)
        out.storeBytes(of: kind, toByteOffset: 8, as: UInt8.self)
        recvs.receive(wrId: 2, local: messages.region.segment(offset: FabricProbe.maxMessage, length: FabricProbe.maxMessage))
        try connection.queuePair.post(recvs)
        sends.send(wrId: 1, local: messages.region.segment(offset: 0, length: size))
        try connection.queuePair.post(sends)
        // One CQ serves send and receive: collect both completions.
        var gotSend = false, gotRecv = false, length = 0
        while !(gotSend && gotRecv) {
            let n = try connection.queuePair.sendCQ.wait(into: wc, spin: spin, timeoutMilliseconds: 5000)
            if n == 0 { throw .timedOut("probe round trip") }
            for i in 0..<n {
                let c = wc[i]
                guard c.isSuccess else { throw c.error }
                if c.wrId == 1 { gotSend = true } else if c.wrId == 2 { gotRecv = true; length = Int(c.byteLength) }
            }
        }
        guard length >= 8, UInt64(littleEndian: inbox.load(as: UInt64.self)) == sequence else {
            throw .unexpectedEvent(stage: "probe round trip", event: "reply out of sequence", status: 0)
        }
        return (length, inbox)
    }

    /// `count` SEND ping-pongs of `size` bytes (9...65536), each echo verified byte for byte.
    public func pingPong(count: Int, size: Int = 16) throws(FabricError) -> LatencyStats {
        let size = min(max(size, 9), FabricProbe.maxMessage)
        let out = messages.region.address
        fillPattern(UnsafeMutableRawBufferPointer(start: out, count: size), seed: 42)
        var samples = [UInt64](repeating: 0, count: count)
        for i in 0..<count {
            let t0 = monotonicNanoseconds()
            let (len, inbox) = try roundTrip(kind: FabricProbe.kindEcho, size: size)
            samples[i] = monotonicNanoseconds() - t0
            guard len == size, memcmp(inbox + 9, out + 9, size - 9) == 0 else {
                throw .unexpectedEvent(stage: "ping-pong \(i)", event: "echo differs from what was sent", status: 0)
            }
        }
        return LatencyStats(samples: &samples, messageSize: size)
    }

    /// Asks the server for `checksum64` of its whole buffer.
    public func remoteChecksum() throws(FabricError) -> UInt64 {
        let (len, inbox) = try roundTrip(kind: FabricProbe.kindChecksum, size: 9)
        guard len >= 16 else { throw .unexpectedEvent(stage: "checksum", event: "short reply", status: 0) }
        return UInt64(littleEndian: inbox.load(fromByteOffset: 8, as: UInt64.self))
    }

    /// RDMA WRITEs `length` bytes of `local` (from `localOffset`) to the server's
    /// buffer at `remoteOffset`, in `block`-sized requests, `depth` in flight.
    public func write(
        from local: MemoryRegion, localOffset: Int = 0, remoteOffset: Int = 0, length: Int,
        block: Int = 65536, depth: Int = 16
    ) throws(FabricError) -> Throughput {
        try transfer(write: true, local: local, localOffset: localOffset, remoteOffset: remoteOffset,
                     length: length, block: block, depth: depth)
    }

    /// RDMA READs `length` bytes of the server's buffer into `local`.
    public func read(
        into local: MemoryRegion, localOffset: Int = 0, remoteOffset: Int = 0, length: Int,
        block: Int = 65536, depth: Int = 16
    ) throws(FabricError) -> Throughput {
        try transfer(write: false, local: local, localOffset: localOffset, remoteOffset: remoteOffset,
                     length: length, block: block, depth: depth)
    }

    private func transfer(
        write: Bool, local: MemoryRegion, localOffset: Int, remoteOffset: Int, length: Int, block: Int, depth: Int
    ) throws(FabricError) -> Throughput {
        guard length > 0, block > 0, localOffset >= 0, remoteOffset >= 0,
              localOffset <= local.length, length <= local.length - localOffset,
              remoteOffset <= remoteLength, length <= remoteLength - remoteOffset
        else {
            throw .invalidArgument(call: write ? "probe write" : "probe read",
                                   "\(length) bytes at local \(localOffset) / remote \(remoteOffset) in blocks of \(block) do not fit the \(local.length)-byte local and \(remoteLength)-byte remote buffers")
        }
        let depth = max(1, min(depth, sends.capacity, connection.queuePair.config.sendDepth - 2))
        var posted = 0, completed = 0, inFlight = 0
        let t0 = monotonicNanoseconds()
        while completed < length {
            while inFlight < depth && posted < length && !sends.isFull {
                let n = min(block, length - posted)
                let sge = local.segment(offset: localOffset + posted, length: n)
                let raddr = remoteAddress &+ UInt64(remoteOffset + posted)
                if write {
                    sends.write(wrId: UInt64(n), local: sge, remoteAddress: raddr, rkey: remoteKey)
                } else {
                    sends.read(wrId: UInt64(n), local: sge, remoteAddress: raddr, rkey: remoteKey)
                }
                posted += n
                inFlight += 1
            }
            try connection.queuePair.post(sends)
            let n = try connection.queuePair.sendCQ.wait(into: wc, spin: spin, timeoutMilliseconds: 10_000)
            if n == 0 { throw .timedOut(write ? "RDMA WRITE" : "RDMA READ") }
            for i in 0..<n {
                let c = wc[i]
                guard c.isSuccess else { throw c.error }
                completed += Int(c.wrId)
                inFlight -= 1
            }
        }
        return Throughput(operation: write ? "RDMA WRITE" : "RDMA READ", bytes: length, blockSize: block,
                          nanoseconds: monotonicNanoseconds() - t0)
    }
}

#if canImport(Glibc)
import Glibc
#endif
