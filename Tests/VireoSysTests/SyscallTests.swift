import Testing
import CVireoSys
@testable import VireoSys
#if canImport(Glibc)
import Glibc
#endif

@Suite struct SyscallTests {
    @Test func minusOneConventionNamesTheCallAndErrno() {
        #expect(throws: SystemError(call: "open", errno: ENOENT)) {
            _ = try FileDescriptor.open("/nonexistent/vireo", flags: O_RDONLY)
        }
        let e = SystemError(call: "mmap", errno: ENOMEM)
        #expect(e.description.hasPrefix("mmap: "))
        #expect(e.description.hasSuffix("(errno 12)"))
    }

    @Test func zeroOrErrnoAcceptsBothErrorStyles() {
        #expect(throws: SystemError(call: "x", errno: EINVAL)) { try zeroOrErrno("x") { EINVAL } }
        #expect(throws: SystemError(call: "y", errno: ENOMEM)) { try zeroOrErrno("y") { -ENOMEM } }
        errno = EPERM
        #expect(throws: SystemError(call: "w", errno: EPERM)) { try zeroOrErrno("w") { -1 } }
        #expect(throws: Never.self) { try zeroOrErrno("z") { 0 } }
    }

    @Test func countOrNegativeErrnoReturnsTheCountOrNamesTheError() throws {
        #expect(try countOrNegativeErrno("poll") { 7 } == 7)
        #expect(try countOrNegativeErrno("poll") { 0 } == 0)
        #expect(throws: SystemError(call: "poll", errno: EINVAL)) { try countOrNegativeErrno("poll") { -EINVAL } }
    }

    @Test func takenOrWouldBlockTellsNothingYetFromAnError() throws {
        #expect(try takenOrWouldBlock("take") { 0 })
        errno = EAGAIN
        #expect(try !takenOrWouldBlock("take") { -1 })
        errno = EINTR
        #expect(try !takenOrWouldBlock("take") { -1 })
        errno = EBADF
        #expect(throws: SystemError(call: "take", errno: EBADF)) { try takenOrWouldBlock("take") { -1 } }
    }

    @Test func nonNullThrowsWithErrno() {
        errno = EACCES
        #expect(throws: SystemError(call: "thing", errno: EACCES)) {
            let _: Int = try nonNull("thing") { nil }
        }
    }

    @Test func eintrIsRetried() throws {
        var calls = 0
        let rc = try syscallRetrying("fake") { () -> Int32 in
            calls += 1
            if calls < 3 { errno = EINTR; return -1 }
            return 7
        }
        #expect(rc == 7 && calls == 3)
    }

    @Test func eventFDSignalsAndDrains() throws {
        let ev = try EventFD()
        #expect(ev.drain() == 0)
        ev.signal()
        ev.signal()
        #expect(ev.drain() == 2)
        #expect(ev.drain() == 0)
    }

    @Test func pollerSeesEventFD() throws {
        let ev = try EventFD()
        let poller = Poller(capacity: 2)
        let slot = poller.add(ev.rawValue)
        #expect(try poller.wait(timeoutMilliseconds: 0) == 0)
        ev.signal()
        #expect(try poller.wait(timeoutMilliseconds: 1000) == 1)
        #expect(poller.isReady(slot))
    }

    @Test func memfdMappingsShareBytes() throws {
        let fd = try FileDescriptor.memfd(name: "guest", size: 2 * pageSize)
        #expect(try fd.size() == 2 * pageSize)
        let a = try MemoryMapping(fd: fd, offset: 0, count: 2 * pageSize)
        let b = try MemoryMapping(fd: fd, offset: pageSize, count: pageSize)
        a.baseAddress.storeBytes(of: 0xfeed_beef, toByteOffset: pageSize + 8, as: UInt32.self)
        #expect(b.baseAddress.load(fromByteOffset: 8, as: UInt32.self) == 0xfeed_beef)
    }

    @Test func mappingRejectsBadArguments() throws {
        let fd = try FileDescriptor.memfd(name: "x", size: pageSize)
        #expect(throws: SystemError.self) { _ = try MemoryMapping(fd: fd, offset: 0, count: 0) }
        #expect(throws: SystemError.self) { _ = try MemoryMapping(fd: fd, offset: -1, count: 10) }
        #expect(throws: SystemError.self) { _ = try MemoryMapping(fd: fd, offset: 1, count: pageSize) }
    }

    @Test func ownedDescriptorIsClosedOnDrop() throws {
        var raw: Int32 = -1
        do {
            let fd = try FileDescriptor.memfd(name: "y", size: 16)
            raw = fd.rawValue
            #expect(fcntl(raw, F_GETFD) != -1)
        }
        #expect(fcntl(raw, F_GETFD) == -1 && errno == EBADF)
    }

    @Test func threadRunsAndJoins() throws {
        let box = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        box.initialize(to: 0)
        defer { box.deallocate() }
        nonisolated(unsafe) let p = box
        let t = try OSThread(name: "vireo-test") { p.pointee = 42 }
        t.join()
        #expect(box.pointee == 42)
    }

    @Test func checksumAndPatternAreDeterministic() {
        let a = UnsafeMutableRawBufferPointer.allocate(byteCount: 4099, alignment: 8)
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 4099, alignment: 8)
        defer { a.deallocate(); b.deallocate() }
        fillPattern(a, seed: 7)
        fillPattern(b, seed: 7)
        #expect(checksum64(UnsafeRawBufferPointer(a)) == checksum64(UnsafeRawBufferPointer(b)))
        b[4098] ^= 1
        #expect(checksum64(UnsafeRawBufferPointer(a)) != checksum64(UnsafeRawBufferPointer(b)))
        fillPattern(b, seed: 8)
        #expect(checksum64(UnsafeRawBufferPointer(a)) != checksum64(UnsafeRawBufferPointer(b)))
    }
}

@Suite struct ByteCountTests {
    @Test func parsesBinaryUnits() {
        #expect(parseByteCount("4096") == 4096)
        #expect(parseByteCount("64K") == 65536)
        #expect(parseByteCount("128KiB") == 131072)
        #expect(parseByteCount("64m") == 64 << 20)
        #expect(parseByteCount("1G") == 1 << 30)
        #expect(parseByteCount("10b") == 10)
    }

    @Test(arguments: ["", "K", "-1", "1.5M", "12Q", "99999999999999T", "0x10"])
    func rejectsMalformed(text: String) { #expect(parseByteCount(text) == nil) }
}

@Suite struct DurationTextTests {
    @Test func parsesUnitsAndRefusesOverflow() {
        #expect(parseDuration("120s") == 120_000_000_000)
        #expect(parseDuration("500ms") == 500_000_000)
        #expect(parseDuration("2m") == 120_000_000_000)
        #expect(parseDuration("1h") == 3_600_000_000_000)
        #expect(parseDuration("7") == 7_000_000_000)
        #expect(parseDuration("x") == nil)
        #expect(parseDuration("99999999999999999999h") == nil)
        #expect(parseDuration("9999999999999h") == nil)   // overflows UInt64 nanoseconds
    }
}
