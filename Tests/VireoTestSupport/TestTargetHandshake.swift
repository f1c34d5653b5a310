import VireoAuth
import VireoFabric
import VireoSys
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// The target's side of the handshake for the tests' hand-written targets
/// (a misbehaving block target, a packet peer): the accept data they send, and
/// the answer to the initiator's hello, admitting any host, as a real target
/// with no hosts configured does.
public enum TestTargetHandshake {
    public static let policy = AccessPolicy(targetName: "test-target", targetKey: nil, hosts: [:])

    /// `geometry`'s bytes followed by the handshake part (a fresh nonce).
    public static func accept(_ geometry: [UInt8]) -> [UInt8] { TargetHandshake.accept(geometry: geometry, policy: policy) }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Waits for the initiator's hello on `connection` (its first SEND), checks it and
    /// RDMA-WRITES the result into its mailbox. Call right after accepting, before posting
    /// other receives. Returns the host's name.
    public static func answer(on connection: Connection, request: [UInt8], accept: [UInt8],
                              timeoutMilliseconds: Int = 10_000) throws -> String {
        let buffer = try RegisteredBuffer(pd: connection.pd, count: AuthHello.size + AuthResult.size, access: [.localWrite])
        connection.holdUntilReleased(buffer)
        let receive = RecvBatch(capacity: 1)
        receive.receive(wrId: 1, local: buffer.region.segment(offset: 0, length: AuthHello.size))
        try connection.queuePair.post(receive)
        let completions = CompletionBuffer(capacity: 4)
        func wait(_ cq: CompletionQueue, _ what: String) throws -> Completion {
            let deadline = monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
            while monotonicNanoseconds() < deadline {
                if try cq.poll(into: completions) > 0 {
                    guard completions[0].isSuccess else { throw Failure(description: "\(what): \(completions[0].status)") }
                    return completions[0]
                }
                usleep(200)
            }
            throw Failure(description: "no \(what) within \(timeoutMilliseconds) ms")
        }
        let hello = try wait(connection.queuePair.receiveCQ, "hello")
        let h = TargetHandshake(policy: policy, endpoint: AccessPolicy.Endpoint(allowAnyHost: true), endpointDescription: "test",
                                request: Array(request.prefix(ConnectRequest.size)), accept: accept, claimedHostID: nil)
        switch h.verify(UnsafeRawPointer(buffer.bytes.baseAddress!), count: Int(hello.byteLength)) {
        case .malformed(let why), .rejected(_, let why, _, _, _):
            throw Failure(description: why)
        case .accepted(let host, let result, let address, let key):
            result.withUnsafeBytes {
                (buffer.bytes.baseAddress! + AuthHello.size).copyMemory(from: $0.baseAddress!, byteCount: AuthResult.size)
            }
            let send = SendBatch(capacity: 1)
            send.write(wrId: 2, local: buffer.region.segment(offset: AuthHello.size, length: AuthResult.size),
                       remoteAddress: address, rkey: key)
            try connection.queuePair.post(send)
            _ = try wait(connection.queuePair.sendCQ, "result write")
            return host
        }
    }
}
