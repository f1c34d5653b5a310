import CVireoSys
import VireoUring
import Logging
import Testing
@testable import VireoBlockTarget
import VireoSys
import VireoWire
@testable import VireoTarget
#if canImport(Glibc)
import Glibc
#endif

/// Stores, io_uring and admission, without RDMA.
struct StorageTests {
    static let logger = Logger(label: "vireo.target.test")

    static func tempPath(_ tag: String) -> String {
        "/tmp/vireo-target-test-\(getpid())-\(tag)-\(UInt32.random(in: 0...UInt32.max)).img"
    }

    @Test func fileExportIsCreatedSparse() throws {
        let path = Self.tempPath("sparse")
        defer { unlink(path) }
        let cfg = ExportConfig(name: "s", backing: .file(path), size: 256 << 20)
        let store = try BlockStore(config: cfg, logger: Self.logger)
        #expect(store.capacity == 256 << 20)
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_size == 256 << 20)
        #expect(st.st_blocks * 512 < 1 << 20, "allocated \(st.st_blocks * 512) bytes: not sparse")
    }

    @Test func missingFileWithoutSizeFailsNamingThePath() {
        let path = Self.tempPath("missing")
        #expect {
            _ = try BlockStore(config: ExportConfig(name: "m", backing: .file(path)), logger: Self.logger)
        } throws: { error in
            "\(error)".contains(path)
        }
    }

    @Test func existingFileKeepsItsSizeAndIsNotTruncated() throws {
        let path = Self.tempPath("existing")
        defer { unlink(path) }
        let fd = open(path, O_CREAT | O_RDWR, 0o600)
        #expect(ftruncate(fd, 8 << 20) == 0)
        close(fd)
        let store = try BlockStore(config: ExportConfig(name: "e", backing: .file(path)), logger: Self.logger)
        #expect(store.capacity == 8 << 20)
    }

    @Test func memoryExportHasItsSize() throws {
        let store = try BlockStore(config: ExportConfig(name: "m", backing: .memory, size: 4 << 20), logger: Self.logger)
        #expect(store.capacity == 4 << 20 && store.memory != nil && store.fd == -1)
    }

    /// Write, read back, fdatasync, through the ring on an O_DIRECT (or buffered) file.
    /// A fixed buffer (pinned once at registration) reads and writes like a plain one; an
    /// emptied slot is refused.
    @Test func uringFixedBuffersReadAndWrite() throws {
        let path = Self.tempPath("uring-fixed")
        defer { unlink(path) }
        let store = try BlockStore(config: ExportConfig(name: "u", backing: .file(path), size: 4 << 20), logger: Self.logger)
        let ring = try IOUring(entries: 8)
        try ring.registerFixedBufferSlots(4)
        let buf = try MemoryMapping(anonymous: 1 << 20)
        try ring.setFixedBuffer(2, UnsafeMutableRawBufferPointer(start: buf.baseAddress, count: 1 << 20))
        vireo_fill_pattern(buf.baseAddress, 1 << 20, 5)
        let range = buf.baseAddress + 4096
        let sum = vireo_checksum64(range, 512 << 10)
        #expect(ring.write(fd: store.fd, from: range, count: 512 << 10, offset: 0, fixedBuffer: 2, userData: 1))
        try ring.submit()
        #expect(try ring.waitCompletion().result == 512 << 10)
        memset(range, 0, 512 << 10)
        #expect(ring.read(fd: store.fd, into: range, count: 512 << 10, offset: 0, fixedBuffer: 2, userData: 2))
        try ring.submit()
        #expect(try ring.waitCompletion().result == 512 << 10)
        #expect(vireo_checksum64(range, 512 << 10) == sum)
        try ring.setFixedBuffer(2, nil)
        #expect(ring.read(fd: store.fd, into: buf.baseAddress, count: 4096, offset: 0, fixedBuffer: 2, userData: 3))
        try ring.submit()
        #expect(try ring.waitCompletion().result < 0, "an emptied slot is refused")
    }

    @Test func uringReadWriteFsync() throws {
        let path = Self.tempPath("uring")
        defer { unlink(path) }
        let store = try BlockStore(config: ExportConfig(name: "u", backing: .file(path), size: 4 << 20), logger: Self.logger)
        let ring = try IOUring(entries: 8)
        let buf = try MemoryMapping(anonymous: 1 << 20)
        vireo_fill_pattern(buf.baseAddress, 1 << 20, 9)
        let sum = vireo_checksum64(buf.baseAddress, 1 << 20)
        #expect(ring.write(fd: store.fd, from: buf.baseAddress, count: 1 << 20, offset: 1 << 20, userData: 1))
        try ring.submit()
        let w = try ring.waitCompletion()
        #expect(w.userData == 1 && w.result == 1 << 20)
        #expect(ring.fsync(fd: store.fd, userData: 2))
        try ring.submit()
        let f = try ring.waitCompletion()
        #expect(f.userData == 2 && f.result == 0)
        memset(buf.baseAddress, 0, 1 << 20)
        #expect(ring.read(fd: store.fd, into: buf.baseAddress, count: 1 << 20, offset: 1 << 20, userData: 3))
        try ring.submit()
        let r = try ring.waitCompletion()
        #expect(r.userData == 3 && r.result == 1 << 20)
        #expect(vireo_checksum64(buf.baseAddress, 1 << 20) == sum)
        // The eventfd registered with the ring was signalled.
        #expect(ring.eventFD.drain() > 0)
    }

    /// DISCARD (punch hole) and WRITE_ZEROES (zero range) on a file read back zeroes.
    @Test func discardAndWriteZeroesReadBackZeroes() throws {
        let path = Self.tempPath("zero")
        defer { unlink(path) }
        let store = try BlockStore(config: ExportConfig(name: "z", backing: .file(path), size: 4 << 20), logger: Self.logger)
        let ring = try IOUring(entries: 8)
        let buf = try MemoryMapping(anonymous: 2 << 20)
        memset(buf.baseAddress, 0xAB, 2 << 20)
        #expect(ring.write(fd: store.fd, from: buf.baseAddress, count: 2 << 20, offset: 0, userData: 1))
        try ring.submit()
        #expect(try ring.waitCompletion().result == 2 << 20)
        let punch: FallocateMode = [.punchHole, .keepSize]
        #expect(ring.fallocate(fd: store.fd, mode: punch, offset: 0, length: 1 << 20, userData: 2))
        try ring.submit()
        #expect(try ring.waitCompletion().result == 0)
        #expect(ring.fallocate(fd: store.fd, mode: [.zeroRange, .keepSize],
                               offset: 1 << 20, length: 512 << 10, userData: 3))
        try ring.submit()
        let z = try ring.waitCompletion().result
        #expect(z == 0 || z == -EOPNOTSUPP, "zero range: \(z)")
        if z == -EOPNOTSUPP {  // e.g. tmpfs: the engine falls back to punching a hole
            #expect(throws: Never.self) { try StorageFile.fallocate(store.fd, mode: punch, offset: 1 << 20, length: 512 << 10) }
        }
        memset(buf.baseAddress, 0xFF, 2 << 20)
        #expect(ring.read(fd: store.fd, into: buf.baseAddress, count: 2 << 20, offset: 0, userData: 4))
        try ring.submit()
        #expect(try ring.waitCompletion().result == 2 << 20)
        let bytes = UnsafeRawBufferPointer(start: buf.baseAddress, count: 2 << 20)
        #expect(bytes[0..<(1536 << 10)].allSatisfy { $0 == 0 })
        #expect(bytes[(1536 << 10)...].allSatisfy { $0 == 0xAB })
        #expect(try store.capacity == UInt64(FileDescriptor.open(path, flags: O_RDONLY).size()))
    }

    // MARK: admission

    static func request(_ name: String, depth: UInt16 = 64, segments: UInt16 = 300, maxIO: UInt32 = 8 << 20,
                        write: Bool = true, kind: Wire.EndpointKind = .block, version: UInt8 = Wire.version,
                        probe: Bool = false) -> [UInt8] {
        var r = ConnectRequest(kind: kind, name: name, queueIndex: 0, queueDepth: depth, maxSegments: segments,
                               maxIOBytes: maxIO, hostID: Array(repeating: 1, count: 16), wantsWrite: write)
        r.version = version
        r.probe = probe
        return try! r.encoded()
    }

    static func exports() throws -> [String: Export] {
        var ro = ExportConfig(name: "ro", backing: .memory, size: 1 << 20)
        ro.readOnly = true
        var small = ExportConfig(name: "small", backing: .memory, size: 1 << 20)
        small.queueDepth = 32
        small.maxSegments = 8
        small.maxIO = 128 << 10
        small.maxQueues = 1
        return ["ro": try Export(config: ro, logger: logger), "small": try Export(config: small, logger: logger)]
    }

    @Test func admissionGrantsTheSmallerOfAskedAndConfigured() throws {
        let ex = try Self.exports()
        guard case .admit(let a) = Admission.decide(privateData: Self.request("small"), exports: ex) else {
            Issue.record("rejected")
            return
        }
        #expect(a.geometry.queueDepth == 32 && a.geometry.maxSegments == 8 && a.geometry.maxIOBytes == 128 << 10)
        #expect(a.geometry.flags.contains(.flush) && a.geometry.flags.contains(.discard) && !a.geometry.flags.contains(.readOnly))
        // The initiator's own check accepts it.
        #expect(throws: Never.self) {
            _ = try BlockGeometry(decoding: a.geometry.encoded(), requested: ConnectRequest(decoding: Self.request("small")))
        }
        guard case .admit(let b) = Admission.decide(privateData: Self.request("small", depth: 4, segments: 2, maxIO: 8192),
                                                    exports: ex) else { Issue.record("rejected"); return }
        #expect(b.geometry.queueDepth == 4 && b.geometry.maxSegments == 2 && b.geometry.maxIOBytes == 8192)
        #expect(b.geometry.maxInlineBytes == 4096)
    }

    @Test(arguments: [
        (request("nope"), RejectReason.noSuchEndpoint, "no such export: nope"),
        (request("ro", write: true), .readOnly, "export ro is read-only"),
        (request("small", version: 9), .versionMismatch, "target speaks wire version \(Wire.version), initiator sent 9"),
        (request("small", kind: .packet), .wrongKind, "block endpoints only"),
        ([UInt8](repeating: 0, count: 56), .malformed, "bad magic"),
        (request("small", depth: 0), .malformed, "queue depth and segments must be at least 1"),
        (request("small", maxIO: 100), .malformed, "below the block size"),
    ])
    func admissionRejects(_ pd: [UInt8], _ reason: RejectReason, _ message: String) throws {
        guard case .reject(let r) = Admission.decide(privateData: pd, exports: try Self.exports()) else {
            Issue.record("admitted")
            return
        }
        #expect(r.reason == reason)
        #expect(r.message.contains(message), "\(r.message)")
        #expect(ConnectReject(decoding: r.encoded()) == r)
    }

    @Test func admissionEnforcesQueueLimits() throws {
        let ex = try Self.exports()
        ex["small"]!.queues = 1
        guard case .reject(let r) = Admission.decide(privateData: Self.request("small"), exports: ex) else {
            Issue.record("admitted")
            return
        }
        #expect(r.reason == .queueLimit)
        let ro = ex["ro"]!
        ro.queuesByHost[Array(repeating: 1, count: 16)] = 16
        guard case .reject(let h) = Admission.decide(privateData: Self.request("ro", write: false), exports: ex) else {
            Issue.record("admitted")
            return
        }
        #expect(h.reason == .queueLimit && h.message.contains("to this host"))
    }

    /// A path probe is checked as a connect would be; one that would be admitted is answered
    /// with `probeAnswer` (nothing allocated), one that would not with the connect's reject.
    @Test func aPathProbeIsAnsweredWithoutAConnection() throws {
        let ex = try Self.exports()
        guard case .reject(let ok) = Admission.decide(privateData: Self.request("small", probe: true), exports: ex) else {
            Issue.record("a probe was admitted as a connection")
            return
        }
        #expect(ok.reason == .probeAnswer && ok.message.contains("export small is served here"), "\(ok.message)")
        #expect(ConnectReject(decoding: ok.encoded()) == ok)
        #expect(ex["small"]!.queues == 0)
        for (pd, reason) in [(Self.request("nope", probe: true), RejectReason.noSuchEndpoint),
                             (Self.request("ro", write: true, probe: true), .readOnly),
                             (Self.request("small", version: 9, probe: true), .versionMismatch)] {
            guard case .reject(let r) = Admission.decide(privateData: pd, exports: ex) else { Issue.record("admitted"); continue }
            #expect(r.reason == reason, "\(r.message)")
        }
        ex["small"]!.queues = 1
        guard case .reject(let full) = Admission.decide(privateData: Self.request("small", probe: true), exports: ex) else {
            Issue.record("admitted")
            return
        }
        #expect(full.reason == .queueLimit, "a probe of a full export says so")
        guard case .reject(let net) = Admission.decide(privateData: Self.request("lan0", kind: .packet, probe: true), exports: ex,
                                                       networks: ["lan0"]) else { Issue.record("not answered"); return }
        #expect(net.reason == .probeAnswer && net.kind == .packet)
    }
}
