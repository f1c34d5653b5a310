import CVireoSys
import Logging
import VhostUser
import Virtio
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

// Input: messages applied to a `VhostUserSession` serving a `MemoryBlockDevice`
// (2 queues of up to 64, one worker's worth of rings), in-process: the
// session's stepping seam (`VhostUserSession.stepping`) validates, parses and
// handles each message on this thread, and the rings' queue work runs here
// too (`stepQueues`) after every message and every kick. Each message is
//   fd spec u8 · header (request u32, flags u32, size u32) · payload (`size` bytes, at most 8192 taken)
// The fd spec attaches (bits 0-2) 0-7 descriptors to the message: eventfds
// when bit 3 is set, else memfds of (bits 4-5) 0, 4 KiB, 64 KiB or 1 MiB.
// A payload shorter than `size` (the input ran out, or `size` > 8192) is a
// truncated frame, as at a front-end's end of stream.
// Two request codes are the harness's own, not sent:
//   0x7f00_0001 writes the payload (offset u32, then bytes) into the newest memfd;
//   0x7f00_0002 signals the newest eventfd (a kick) and runs the queue work.
// After the last message (or the first one the session refuses) the session
// is torn down; it must then hold nothing, and (under FuzzDriver) the process
// must have the same open descriptors as before the input.
//
// Descriptors are not created per input: memfds (8 per size class) and
// eventfds (8) come from a pool made once, in turn, and each attachment is a
// dup (the session owns and closes what it receives). After each input the
// used memfds are truncated to 0 and back to their size (zero again), the
// used eventfds are drained, and the turns restart, so an input replays the
// same way. Replies go to one socketpair made once (send buffer 1 MiB) and
// are read and dropped, with any descriptors they carry, after each input.

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

    /// Descriptors made once and handed out (dup'ed) to every input.
    final class Pool: @unchecked Sendable {
        // SAFETY (Sendable): used by one harness run at a time (libFuzzer and
        // replay run inputs one after another; the tests run this harness in
        // one test case).
        /// Memfds per size class: one SET_MEM_TABLE attaches at most 7
        /// (spec bits 0-2), each region then its own file. Fewer empty ones:
        /// they differ only once the harness writes past their end.
        static let perClass = [2, 7, 7, 7]
        static let eventfdCount = 7
        static let shared = Pool()

        var memfds: [[Int32]]
        var eventfds: [Int32]
        var nextMemfd = [Int](repeating: 0, count: memfdSizes.count)
        var nextEventfd = 0
        /// The front-end's end of the reply socket, and the end each session gets a dup of.
        let frontend: Int32, backend: Int32
        var reply = [UInt8](repeating: 0, count: 65536)

        init() {
            memfds = zip(memfdSizes, Self.perClass).map { (size, n) in
                (0..<n).map { _ in (try? FileDescriptor.memfd(name: "fuzz-guest", size: size))?.release() ?? -1 }
            }
            eventfds = (0..<Self.eventfdCount).map { _ in vireo_eventfd(0, 1) }
            var pair: [Int32] = [-1, -1]
            _ = pair.withUnsafeMutableBufferPointer { vireo_socketpair($0.baseAddress) }
            frontend = pair[0]
            backend = pair[1]
            if frontend >= 0 { _ = fcntl(frontend, F_SETFL, fcntl(frontend, F_GETFL) | O_NONBLOCK) }
            // Replies are read once per input: room for 32 of the largest
            // (4 KiB payloads) without a send ever blocking.
            var size: Int32 = 1 << 20
            if backend >= 0 { _ = setsockopt(backend, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
        }

        /// The next memfd of size class `sizeClass` (the pool's own; dup it to send).
        func memfd(_ sizeClass: Int) -> Int32 {
            defer { nextMemfd[sizeClass] += 1 }
            return memfds[sizeClass][nextMemfd[sizeClass] % Self.perClass[sizeClass]]
        }

        func eventfd() -> Int32 {
            defer { nextEventfd += 1 }
            return eventfds[nextEventfd % Self.eventfdCount]
        }

        /// Reads and drops every reply waiting (closing descriptors that came with them).
        func drainReplies() {
            var fds = [Int32](repeating: -1, count: VhostUserChannel.maxFDs)
            while true {
                var nfds: Int32 = 0, truncated: Int32 = 0
                let n = reply.withUnsafeMutableBytes { b in
                    fds.withUnsafeMutableBufferPointer { f in
                        vireo_recvmsg_fds(frontend, b.baseAddress, b.count, f.baseAddress, Int32(f.count), &nfds, &truncated)
                    }
                }
                for i in 0..<Int(max(0, nfds)) { close(fds[i]) }
                if n <= 0 { return }
            }
        }

        /// Makes the descriptors used by the last input as new: memfds zeroed
        /// at their size, eventfds at 0; the turns restart.
        func reset() {
            for c in memfds.indices {
                for i in 0..<min(nextMemfd[c], Self.perClass[c]) where memfds[c][i] >= 0 {
                    _ = ftruncate(memfds[c][i], 0)
                    _ = ftruncate(memfds[c][i], off_t(memfdSizes[c]))
                }
                nextMemfd[c] = 0
            }
            for i in 0..<min(nextEventfd, Self.eventfdCount) where eventfds[i] >= 0 {
                var v: UInt64 = 0
                _ = read(eventfds[i], &v, 8)
            }
            nextEventfd = 0
            drainReplies()
        }
    }

    /// Open descriptors after the previous input (nil: not listed yet).
    nonisolated(unsafe) static var descriptorsBefore: [Int32]?

    static func run(_ data: UnsafeRawBufferPointer) {
        _ = ignoreSIGPIPE
        let pool = Pool.shared
        let checkFDs = FuzzDriver.ownsProcess
        if checkFDs, descriptorsBefore == nil { descriptorsBefore = openDescriptors() }
        serve(data, pool: pool)
        pool.reset()
        if checkFDs, let before = descriptorsBefore {
            // Listed once per input (a /proc listing costs as much as a short
            // input), so what libFuzzer opened between inputs shows up here
            // too: the pipes to llvm-symbolizer it starts to print NEW_FUNC.
            // The session never makes a pipe; any other difference is a leak,
            // or a descriptor of the harness's closed by the session.
            let after = openDescriptors()
            if after != before {
                let opened = after.filter { !before.contains($0) }, closed = before.filter { !after.contains($0) }
                let leaked = opened.filter { !isPipe($0) }
                FuzzCheck.require(leaked.isEmpty && closed.isEmpty,
                                  "descriptors \(leaked) left open, \(closed) closed by the input")
                descriptorsBefore = after
            }
        }
    }

    static func isPipe(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO
    }

    /// One input against one session, torn down before returning.
    static func serve(_ data: UnsafeRawBufferPointer, pool: Pool) {
        var input = FuzzInput(data)
        let device = MemoryBlockDevice(capacityBytes: 64 << 10, numQueues: 2, maxQueueSize: 64, workerCount: 1)
        let raw = fcntl(pool.backend, F_DUPFD_CLOEXEC, 0)
        guard raw >= 0 else { return }
        let session = VhostUserSession.stepping(
            socket: UnixSocket(fd: FileDescriptor(owning: raw)), device: device,
            options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 10, spinNanoseconds: 1000),
                                      drainTimeoutNanoseconds: 100_000_000),
            logger: logger)
        var newestMemfd: Int32 = -1, newestEventfd: Int32 = -1
        var frame: [UInt8] = []
        frame.reserveCapacity(VhostUserHeader.size + 8192)
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
                if newestMemfd >= 0, bytes.count > 0 { _ = pwrite(newestMemfd, bytes.baseAddress, bytes.count, off_t(offset)) }
                continue send
            case kick:
                if newestEventfd >= 0 {
                    var one: UInt64 = 1
                    _ = write(newestEventfd, &one, 8)
                    runQueues(session)
                }
                continue send
            default: break
            }
            let fds = ReceivedFileDescriptors()
            for _ in 0..<Int(spec & 7) {
                let own = spec & 8 != 0 ? pool.eventfd() : pool.memfd(Int(spec >> 4) & 3)
                guard own >= 0 else { continue }
                if spec & 8 != 0 { newestEventfd = own } else { newestMemfd = own }
                let fd = fcntl(own, F_DUPFD_CLOEXEC, 0)
                if fd >= 0 { fds.append(fd) }
            }
            frame.removeAll(keepingCapacity: true)
            VhostUserHeader(request: request, flags: flags, size: size).encode(into: &frame)
            frame.append(contentsOf: payload)
            let end = frame.withUnsafeBytes { session.step(frame: $0, fds: fds) }
            // A refused message closes the connection: the input ends there.
            if end != nil { break send }
            runQueues(session)
        }
        session.finishStepping()
        FuzzCheck.require(session.holdsNothing, "session holds memory, rings or eventfds after its teardown")
    }

    /// The worker's loop while it has work (bounded: a ring the guest keeps
    /// refilling cannot hold the input forever).
    static func runQueues(_ session: VhostUserSession) {
        var rounds = 0
        while rounds < 8, session.stepQueues() > 0 { rounds += 1 }
    }

    /// The process's open descriptors, from /proc/self/fd (without the
    /// listing's own), in the order listed.
    static func openDescriptors() -> [Int32] {
        guard let d = opendir("/proc/self/fd") else { return [] }
        let own = dirfd(d)
        var fds: [Int32] = []
        fds.reserveCapacity(64)
        while let e = readdir(d) {
            let fd = withUnsafeBytes(of: e.pointee.d_name) { name -> Int32 in
                guard name[0] != UInt8(ascii: ".") else { return -1 }
                var v: Int32 = 0
                for c in name { if c == 0 { break }; v = v &* 10 &+ Int32(c &- 48) }
                return v
            }
            if fd >= 0, fd != own { fds.append(fd) }
        }
        closedir(d)
        return fds.sorted()
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
