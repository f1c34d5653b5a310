import CVireoSys
import Logging
import VhostUser
import Virtio
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

// Input: messages sent over a socketpair to a live `VhostUserSession` serving
// a `MemoryBlockDevice` (2 queues of up to 64, one worker thread). Each is
//   fd spec u8 · header (request u32, flags u32, size u32) · payload (`size` bytes)
// The fd spec attaches (bits 0-2) 0-7 descriptors to the message: eventfds
// when bit 3 is set, else memfds of (bits 4-5) 0, 4 KiB, 64 KiB or 1 MiB.
// Two request codes are the harness's own, not sent:
//   0x7f00_0001 writes the payload (offset u32, then bytes) into the newest memfd;
//   0x7f00_0002 signals the newest eventfd (a kick) and waits 200 µs.
// After the last message the front-end hangs up; the session must end.

extension FuzzHarness {
    /// A vhost-user session's state machine fed message sequences with fds.
    public static let vhostUserSession = FuzzHarness(name: "vhost-user-session", run: VhostUserSessionHarness.run,
                                                     seeds: VhostUserSessionHarness.seeds)
}

enum VhostUserSessionHarness {
    static let writeMemory: UInt32 = 0x7f00_0001
    static let kick: UInt32 = 0x7f00_0002
    static let memfdSizes = [0, 4096, 64 << 10, 1 << 20]

    static let logger: Logger = {
        var l = Logger(label: "fuzz.vhost-user")
        l.logLevel = getenv("VIREO_FUZZ_LOG") != nil ? .trace : .critical
        return l
    }()

    static let ignoreSIGPIPE: Void = { signal(SIGPIPE, SIG_IGN); return () }()

    static func run(_ data: UnsafeRawBufferPointer) {
        _ = ignoreSIGPIPE
        var input = FuzzInput(data)
        let device = MemoryBlockDevice(capacityBytes: 64 << 10, numQueues: 2, maxQueueSize: 64, workerCount: 1)
        var pair: UnixSocketPair
        do { pair = try UnixSocket.pair() } catch { return }
        let frontend = pair.first.take()!
        let session = VhostUserSession(
            socket: pair.second.take()!, device: device,
            options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 10, spinNanoseconds: 1000),
                                      drainTimeoutNanoseconds: 100_000_000),
            logger: logger)
        guard let thread = try? OSThread(name: "fuzz-session", { session.run() }) else { return }
        var memfds: [Int32] = [], eventfds: [Int32] = []
        defer {
            for fd in memfds + eventfds { close(fd) }
        }
        var messages = 0
        send: while !input.isEmpty, messages < 32 {
            messages += 1
            let spec = input.read(UInt8.self)
            let request = input.read(UInt32.self), flags = input.read(UInt32.self), size = input.read(UInt32.self)
            let payload = input.take(Int(min(size, 8192)))
            switch request {
            case writeMemory:
                var p = FuzzInput(payload)
                let offset = Int(p.read(UInt32.self) % (1 << 20))
                let bytes = p.rest()
                if let fd = memfds.last, bytes.count > 0 { _ = pwrite(fd, bytes.baseAddress, bytes.count, off_t(offset)) }
                continue send
            case kick:
                if let fd = eventfds.last {
                    var one: UInt64 = 1
                    _ = write(fd, &one, 8)
                    usleep(200)   // let the worker see it before the hang-up
                }
                continue send
            default: break
            }
            var fds: [Int32] = []
            for _ in 0..<Int(spec & 7) {
                if spec & 8 != 0 {
                    let fd = vireo_eventfd(0, 1)
                    if fd >= 0 { eventfds.append(fd); fds.append(fd) }
                } else if let fd = try? FileDescriptor.memfd(name: "fuzz-guest", size: memfdSizes[Int(spec >> 4) & 3]) {
                    let raw = fd.release()
                    memfds.append(raw)
                    fds.append(raw)
                }
            }
            var frame: [UInt8] = []
            VhostUserHeader(request: request, flags: flags, size: size).encode(into: &frame)
            frame += payload
            // A refused message closes the connection; later sends fail and end the input.
            do { try send(frame, fds: fds, on: frontend) } catch { break send }
        }
        // Hang up (writing side only: replies still land in our receive buffer,
        // unread); run() must return (teardown stops the workers and unmaps).
        _ = shutdown(frontend.rawValue, Int32(SHUT_WR))
        thread.join()
    }

    static func send(_ frame: [UInt8], fds: [Int32], on socket: borrowing UnixSocket) throws {
        try frame.withUnsafeBytes { (b) in try socket.send(b, fds: fds) }
    }

    static func message(_ request: VhostUserRequest, spec: UInt8 = 0, flags: UInt32 = VhostUserHeader.version,
                        _ payload: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = [spec]
        VhostUserHeader(request: request.rawValue, flags: flags, size: UInt32(payload.count)).encode(into: &out)
        return out + payload
    }

    static func harnessOp(_ code: UInt32, _ payload: [UInt8] = []) -> [UInt8] {
        var out: [UInt8] = [0]
        VhostUserHeader(request: code, flags: 0, size: UInt32(payload.count)).encode(into: &out)
        return out + payload
    }

    static func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        var o: [UInt8] = []
        o.appendLE(v)
        return o
    }

    static func seeds() -> [[UInt8]] {
        // One 64 KiB region at gpa 0 / user address 0x7f00_0000_0000; queue 0 of 8
        // descriptors: table at 0, avail at 0x1000, used at 0x2000.
        let uva: UInt64 = 0x7f00_0000_0000
        let region = VhostUserMemoryRegionDescriptor(guestPhysicalAddress: 0, size: 64 << 10, frontendVirtualAddress: uva)
        var table = le(UInt32(1)) + le(UInt32(0))
        region.encode(into: &table)
        let features: UInt64 = VirtioFeatures.version1 | 1 << 30
        var setup: [UInt8] = []
        setup += message(.getFeatures)
        setup += message(.setProtocolFeatures, le(UInt64(0x3)))
        setup += message(.setFeatures, le(features))
        setup += message(.setMemTable, spec: 0x21, table)            // one 64 KiB memfd
        // A READ of 512 bytes: header at 0x3000, data at 0x4000, status at 0x5000.
        var mem: [UInt8] = le(UInt32(0))
        var desc: [UInt8] = []
        desc += le(UInt64(0x3000)) + le(UInt32(16)) + le(UInt16(1)) + le(UInt16(1))
        desc += le(UInt64(0x4000)) + le(UInt32(512)) + le(UInt16(3)) + le(UInt16(2))
        desc += le(UInt64(0x5000)) + le(UInt32(1)) + le(UInt16(2)) + le(UInt16(0))
        mem += desc
        setup += harnessOp(writeMemory, mem)
        setup += harnessOp(writeMemory, le(UInt32(0x1000)) + le(UInt16(0)) + le(UInt16(1)) + le(UInt16(0)))
        setup += harnessOp(writeMemory, le(UInt32(0x3000)) + le(UInt32(0)) + le(UInt32(0)) + le(UInt64(2)))
        setup += message(.setVringNum, le(UInt32(0)) + le(UInt32(8)))
        setup += message(.setVringBase, le(UInt32(0)) + le(UInt32(0)))
        var addr: [UInt8] = []
        VhostUserVringAddress(index: 0, flags: 0, descriptorTable: uva, usedRing: uva + 0x2000,
                              availableRing: uva + 0x1000, logGuestAddress: 0).encode(into: &addr)
        setup += message(.setVringAddr, addr)
        setup += message(.setVringCall, spec: 0x09, le(UInt64(0)))   // one eventfd
        setup += message(.setVringKick, spec: 0x09, le(UInt64(0)))
        setup += message(.setVringEnable, le(UInt32(0)) + le(UInt32(1)))
        setup += harnessOp(kick)
        var teardown = setup
        teardown += message(.getVringBase, le(UInt32(0)) + le(UInt32(0)))
        teardown += message(.setMemTable, spec: 0x11, table)          // a 4 KiB memfd: too small
        var config: [UInt8] = message(.getConfig, le(UInt32(0)) + le(UInt32(8)) + le(UInt32(0)) + [UInt8](repeating: 0, count: 8))
        config += message(.getQueueNum)
        config += message(.getMaxMemSlots)
        return [setup, teardown, config]
    }
}
