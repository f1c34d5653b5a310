import VireoAuth
import VireoFabric
import VireoSys
import VireoWire
#if canImport(Glibc)
import Glibc
#endif

/// The initiator's half of the handshake on a connection just established
/// (docs/wire-protocol.md, "Handshake"), run by whoever connects (the device
/// at start, its supervisor on reconnect) before the queue's engine sees the
/// connection: nothing of the guest is registered for it yet.
///
/// It registers two small buffers with the connection's PD, a 48-byte mailbox
/// (remote write: the target writes its result there) and the 152-byte
/// hello, SENDs the hello, and reads the mailbox until a whole result is
/// there (its CRC matches) or the deadline passes. The hello's SEND is
/// signaled with a work id of epoch 0, which no engine takes for its own.
/// Both buffers stay registered as long as the connection (`holdUntilReleased`).
package enum HandshakeExchange {
    /// Runs the exchange; throws the target's refusal, a bad or unproven answer, or a timeout.
    package static func run(_ handshake: InitiatorHandshake, on link: any FabricLink, timeoutMilliseconds: Int32)
        throws(HandshakeFailure) {
        let mailbox: RegisteredBuffer, hello: RegisteredBuffer
        do throws(FabricError) {
            mailbox = try RegisteredBuffer(pd: link.registrar, count: AuthResult.size, access: [.localWrite, .remoteWrite])
            hello = try RegisteredBuffer(pd: link.registrar, count: AuthHello.size, access: [.localWrite])
        } catch {
            throw .malformed("cannot register the handshake buffers: \(error)")
        }
        link.holdUntilReleased(mailbox)
        link.holdUntilReleased(hello)
        let bytes = try handshake.hello(mailboxAddress: mailbox.region.remoteAddress(offset: 0), mailboxKey: mailbox.region.rkey)
        // SAFETY: `hello` holds AuthHello.size bytes, and `bytes` is that long.
        bytes.withUnsafeBytes { hello.bytes.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: AuthHello.size) }
        let batch = SendBatch(capacity: 1)
        batch.send(wrId: WorkID.make(queue: 0, generation: 0, kind: 0, index: 0),
                   local: hello.region.segment(offset: 0, length: AuthHello.size), signaled: true)
        do throws(FabricError) { try link.workQueue.post(batch) } catch {
            throw .malformed("cannot post the handshake hello: \(error)")
        }
        let deadline = monotonicNanoseconds() &+ UInt64(max(timeoutMilliseconds, 1)) * 1_000_000
        var pause: UInt32 = 20
        while true {
            // SAFETY: the mailbox is registered and 48 bytes long; the RNIC may be writing it
            // (a torn copy fails the CRC and is read again).
            let seen = Array(UnsafeRawBufferPointer(start: mailbox.bytes.baseAddress!, count: AuthResult.size))
            switch AuthResult.read(seen) {
            case .result(let r):
                return try handshake.check(r)
            case .invalid(let e):
                throw .malformed(e.message)
            case .incomplete:
                guard monotonicNanoseconds() < deadline else { throw .timedOut(milliseconds: Int(timeoutMilliseconds)) }
                usleep(pause)
                pause = min(pause * 2, 1000)
            }
        }
    }
}
