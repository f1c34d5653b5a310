import Logging
import Testing
import VhostUser
import VireoSys
@testable import VireoBench
import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

/// An in-process vhost-user server over a memory disk (no RDMA).
private final class MemoryDiskServer: @unchecked Sendable {
    let path: String
    let device: MemoryBlockDevice
    private(set) var server: VhostUserServer

    init(capacity: Int, queues: Int) throws {
        path = "/tmp/vireo-bench-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        device = MemoryBlockDevice(capacityBytes: capacity, numQueues: queues, workerCount: queues)
        server = try Self.serve(path, device)
    }

    private static func serve(_ path: String, _ device: MemoryBlockDevice) throws -> VhostUserServer {
        var logger = Logger(label: "test.bench")
        logger.logLevel = .critical
        let server = try VhostUserServer(path: path, device: device,
                                         options: VhostUserOptions(polling: VhostUserPollingOptions(spinIterations: 200)),
                                         logger: logger)
        try server.start()
        return server
    }

    /// Stops the server (the connection closes, as when the backend dies),
    /// runs `whileDown`, and after `downMilliseconds` serves the same disk
    /// contents on the same path again.
    func restart(downMilliseconds: Int, whileDown: () -> Void = {}) throws {
        server.stop()
        whileDown()
        usleep(UInt32(downMilliseconds * 1000))
        server = try Self.serve(path, device)
    }

    deinit { server.stop() }
}

/// Runs `bench` on its own thread; `wait()` returns its result.
private final class BackgroundBench: @unchecked Sendable {
    private let bench: BlkBench
    private var result: Result<BlkResult, BlkBenchError>?
    private var thread: OSThread?

    init(_ bench: BlkBench) throws {
        self.bench = bench
        thread = try OSThread(name: "bench") { [self] in
            do throws(BlkBenchError) { result = .success(try self.bench.run()) } catch { result = .failure(error) }
        }
    }

    func wait() throws -> BlkResult {
        thread?.join()
        thread = nil
        return try result!.get()
    }
}

/// Polls `condition` every 10 ms for up to `seconds`; whether it became true.
private func waitUntil(seconds: Double = 60, _ condition: () -> Bool) -> Bool {
    let deadline = monotonicNanoseconds() + UInt64(seconds * 1e9)
    while !condition() {
        guard monotonicNanoseconds() < deadline else { return false }
        usleep(10_000)
    }
    return true
}

/// A verified random read/write job: 2 queues at qd 8 over 16 MiB of guest memory.
private func verifiedMixedJob(_ socket: String, readPercent: Int, runtime: Double, ramp: Double) -> BlkJob {
    var job = BlkJob(socket: socket)
    job.pattern = .randrw
    job.readPercent = readPercent
    job.queueDepth = 8
    job.queues = 2
    job.runtimeSeconds = runtime
    job.rampSeconds = ramp
    job.verify = true
    job.memoryBytes = 16 << 20
    return job
}

@Suite(.serialized) struct BlkBenchTests {
    @Test func randomMixedLoadVerifiesAgainstAMemoryDisk() throws {
        let disk = try MemoryDiskServer(capacity: 1 << 20, queues: 2)
        let job = verifiedMixedJob(disk.path, readPercent: 50, runtime: 0.6, ramp: 0.1)
        var bench = BlkBench(job: job)
        bench.pids = [("self", getpid())]
        let r = try bench.run()
        #expect(r.ios > 0)
        #expect(r.errors == 0)
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.bytes == r.ios * 4096)
        #expect(r.verifiedBlocks > 0)
        #expect(r.latencyMicroseconds.first { $0.0 == "p50" }.map { $0.1 > 0 } == true)
        #expect(r.cpuSeconds.first?.0 == "self")

        // Independently of the engine's own read-back: every 4 KiB block of the
        // disk is zero (never written) or holds the pattern of its offset and
        // some generation.
        var written = 0
        for block in 0..<(disk.device.contents.count / 4096) {
            let p = disk.device.contents.baseAddress! + block * 4096
            let w = p.assumingMemoryBound(to: UInt64.self)
            if (0..<512).allSatisfy({ w[$0] == 0 }) { continue }
            let matches = (1...UInt32(100_000)).contains {
                BlkVerifyTable.check(p, count: 4096, offset: UInt64(block * 4096), generation: $0)
            }
            #expect(matches, "block \(block) holds data no write produced")
            written += 1
        }
        #expect(written > 0)

        let json = r.json.text
        #expect(json.hasPrefix("{\"tool\":\"vireo-bench blk\",\"label\":\"\",\"rw\":\"randrw\""))
        #expect(json.contains("\"errors\":0,"))
        #expect(json.contains("\"cpu_us_per_io\":{\"self\":"))
    }

    /// WRITE_ZEROES and DISCARD in the mix: each is sent as one 16-byte range; a zeroed block
    /// must read back as zeros (the read-back and the written map check it), a discarded one
    /// is not checked until written again.
    @Test func zeroesAndDiscardsInTheMixVerify() throws {
        let disk = try MemoryDiskServer(capacity: 1 << 20, queues: 2)
        var job = verifiedMixedJob(disk.path, readPercent: 40, runtime: 0.6, ramp: 0)
        job.zeroesPercent = 30
        job.discardPercent = 20
        let map = "/tmp/vireo-bench-zeroes-\(getpid()).map"
        let image = "/tmp/vireo-bench-zeroes-\(getpid()).img"
        defer { unlink(map); unlink(image) }
        job.writtenMap = map
        let r = try BlkBench(job: job).run()
        #expect(r.errors == 0 && r.problems.isEmpty, "\(r.problems)")
        #expect(r.acknowledgedZeroes > 0 && r.acknowledgedDiscards > 0)
        #expect(r.acknowledgedWrites > r.acknowledgedZeroes + r.acknowledgedDiscards)
        #expect(r.json.text.contains("\"acknowledged_zeroes\":\(r.acknowledgedZeroes)"))
        let written = try BlkWrittenMap(parsing: String(decoding: try #require(readFile(map)), as: UTF8.self))
        let zeroed = written.entries.filter { $0.generation == BlkVerifyTable.zeroed }
        #expect(!zeroed.isEmpty, "some block's last write was WRITE_ZEROES")
        var bytes = Array(disk.device.contents)
        #expect(writeFile(image, bytes))
        let good = try written.check(image: image)
        #expect(good.checked == written.entries.count && good.mismatches == 0)
        // A zeroed block that is not zero is found.
        bytes[zeroed[0].block * 4096 + 100] = 1
        #expect(writeFile(image, bytes))
        #expect(try written.check(image: image).firstMismatchBlock == zeroed[0].block)
    }

    @Test func sequentialReadsOfABlockLargerThanASector() throws {
        let disk = try MemoryDiskServer(capacity: 4 << 20, queues: 1)
        var job = BlkJob(socket: disk.path)
        job.pattern = .read
        job.blockSize = 128 << 10
        job.queueDepth = 4
        job.runtimeSeconds = 0.3
        job.rampSeconds = 0
        job.memoryBytes = 16 << 20
        let r = try BlkBench(job: job).run()
        #expect(r.ios > 0 && r.errors == 0 && r.problems.isEmpty)
        #expect(r.megabytesPerSecond > 0)
    }

    /// The backend goes away three times under a verified random load, each
    /// time with requests in flight that it never completes (held, then
    /// dropped: a crash), and comes back on the same socket with the same
    /// disk: the bench reconnects each time, issues what was in flight again,
    /// and every block written (acknowledged before or after a restart) reads back.
    @Test func reconnectsWhenTheBackendRestartsAndLosesNoAcknowledgedWrite() throws {
        let disk = try MemoryDiskServer(capacity: 1 << 20, queues: 2)
        var job = verifiedMixedJob(disk.path, readPercent: 30, runtime: 120, ramp: 0)
        job.reconnectSeconds = 30
        job.stopFile = "/tmp/vireo-bench-stop-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(job.stopFile!) }
        let run = try BackgroundBench(BlkBench(job: job))
        for k in 0..<3 {
            let handled = disk.device.requestsHandled.load(ordering: .relaxed)
            #expect(waitUntil { disk.device.requestsHandled.load(ordering: .relaxed) >= handled + 100 },
                    "I/O flows before restart \(k)")
            disk.device.holdCompletions(true)
            #expect(waitUntil { disk.device.heldCount > 0 }, "requests in flight at restart \(k)")
            try disk.restart(downMilliseconds: 200) { disk.device.holdCompletions(false) }
        }
        let handled = disk.device.requestsHandled.load(ordering: .relaxed)
        #expect(waitUntil { disk.device.requestsHandled.load(ordering: .relaxed) >= handled + 100 }, "I/O flows after the restarts")
        close(open(job.stopFile!, O_CREAT | O_WRONLY, 0o600))
        let r = try run.wait()
        #expect(r.reissued > 0, "requests were in flight at the restarts and issued again")
        #expect(r.reconnects == 3)
        #expect(r.errors == 0)
        #expect(r.problems.isEmpty, "\(r.problems)")
        #expect(r.acknowledgedWrites > 0)
        #expect(r.verifiedBlocks > 0)
        #expect(r.seconds < job.runtimeSeconds, "the stop file ends the run")
        #expect(r.json.text.contains("\"reconnects\":3,"))
    }

    /// Without --reconnect, a backend that goes away fails the run at once
    /// (not after the 30 s runtime and the drain deadline) and says why.
    @Test func aDisconnectWithoutReconnectFailsTheRunAndSaysSo() throws {
        let disk = try MemoryDiskServer(capacity: 1 << 20, queues: 1)
        var job = BlkJob(socket: disk.path)
        job.pattern = .randwrite
        job.queueDepth = 4
        job.runtimeSeconds = 30
        job.rampSeconds = 0
        job.memoryBytes = 16 << 20
        let run = try BackgroundBench(BlkBench(job: job))
        #expect(waitUntil { disk.device.requestsHandled.load(ordering: .relaxed) > 0 }, "I/O flows")
        let stopped = monotonicNanoseconds()
        disk.server.stop()
        let r = try run.wait()
        #expect(monotonicNanoseconds() - stopped < 20_000_000_000)
        #expect(r.problems.contains("the backend closed the connection (no --reconnect)"), "\(r.problems)")
        #expect(r.reconnects == 0)
    }

    @Test func refusesMoreQueuesThanTheDeviceHas() throws {
        let disk = try MemoryDiskServer(capacity: 1 << 20, queues: 1)
        var job = BlkJob(socket: disk.path)
        job.queues = 2
        job.runtimeSeconds = 0.1
        #expect(throws: BlkBenchError.self) { _ = try BlkBench(job: job).run() }
    }

    @Test func verifyPatternDependsOnOffsetAndGeneration() {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 8)
        defer { p.deallocate() }
        BlkVerifyTable.fill(p, count: 4096, offset: 8192, generation: 3)
        #expect(BlkVerifyTable.check(p, count: 4096, offset: 8192, generation: 3))
        #expect(!BlkVerifyTable.check(p, count: 4096, offset: 8192, generation: 4))
        #expect(!BlkVerifyTable.check(p, count: 4096, offset: 4096, generation: 3))
        p.storeBytes(of: 0x5A, toByteOffset: 4000, as: UInt8.self)
        #expect(!BlkVerifyTable.check(p, count: 4096, offset: 8192, generation: 3))
        #expect(BlkVerifyTable.nextGeneration(0) == 1)
        #expect(BlkVerifyTable.nextGeneration(BlkVerifyTable.busy - 1) == 1)
        #expect(BlkVerifyTable.nextGeneration(5 | BlkVerifyTable.busy) == 6)
    }

    @Test func jobProblemsNameTheFlags() {
        var job = BlkJob(socket: "/x")
        job.blockSize = 1000
        job.queueDepth = 0
        job.readPercent = 101
        let p = job.problems()
        #expect(p.contains { $0.hasPrefix("--bs") } && p.contains { $0.hasPrefix("--qd") } && p.contains { $0.hasPrefix("--read-percent") })
        #expect(BlkJob(socket: "/x").problems().isEmpty)
    }
}

@Suite struct BenchHelperTests {
    @Test func procStatParsingSurvivesSpacesAndParensInTheName() {
        let line = "1234 (vireo (x) y) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 1 0"
        #expect(ProcessCPU.parse(line, ticksPerSecond: 100) == 4.0)
        #expect(ProcessCPU.parse("garbage", ticksPerSecond: 100) == nil)
        #expect(ProcessCPU.seconds(pid: getpid()) != nil)
    }

    @Test func statsFileParsingSumsSamplesByName() {
        let text = """
            # HELP vireo_a_total A.
            # TYPE vireo_a_total counter
            vireo_a_total{disk="d0",socket="/x y"} 3
            vireo_a_total{disk="d1"} 4
            vireo_stats_sequence 17
            bogus
            """
        let s = StatsFileReader.parse(text)
        #expect(s["vireo_a_total"] == 7)
        #expect(s["vireo_stats_sequence"] == 17)
        #expect(s.count == 2)
    }

    @Test func jsonEscapesAndKeepsOrder() {
        var o = JSONObject()
        o.set("s", "a\"b\\\n\u{1}")
        o.set("n", 3)
        o.set("d", 2.5)
        o.set("w", 4.0)
        o.set("x", Double.nan)
        var inner = JSONObject()
        inner.set("k", true)
        o.set("o", inner)
        #expect(o.text == #"{"s":"a\"b\\\n\u0001","n":3,"d":2.5,"w":4.0,"x":null,"o":{"k":true}}"#)
    }

    @Test func xorshiftStaysBelowTheBound() {
        var r = XorShift(seed: 0)
        var seen = Set<UInt64>()
        for _ in 0..<10_000 {
            let v = r.next(below: 10)
            #expect(v < 10)
            seen.insert(v)
        }
        #expect(seen.count == 10)
    }
}

/// The written map of a `--verify` run, and `check-image`'s check of a raw image against it.
struct BlkWrittenMapTests {
    @Test func aMapReadsBackAndChecksAnImage() throws {
        let bs = 4096
        let map = BlkWrittenMap(blockSize: bs, entries: [(1, 7), (3, 1)])
        #expect(try BlkWrittenMap(parsing: map.text) == map)
        let path = "/tmp/vireo-written-map-\(getpid()).img"
        defer { unlink(path) }
        var image = [UInt8](repeating: 0, count: 4 * bs)
        image.withUnsafeMutableBytes { p in
            BlkVerifyTable.fill(p.baseAddress! + bs, count: bs, offset: UInt64(bs), generation: 7)
            BlkVerifyTable.fill(p.baseAddress! + 3 * bs, count: bs, offset: UInt64(3 * bs), generation: 1)
        }
        #expect(writeFile(path, image))
        let good = try map.check(image: path)
        #expect(good.checked == 2 && good.mismatches == 0)
        // An older generation in block 3 (a write that never reached the disk) is found.
        image.withUnsafeMutableBytes { p in
            BlkVerifyTable.fill(p.baseAddress! + 3 * bs, count: bs, offset: UInt64(3 * bs), generation: 9)
        }
        #expect(writeFile(path, image))
        let bad = try map.check(image: path)
        #expect(bad.mismatches == 1 && bad.firstMismatchBlock == 3)
    }

    @Test(arguments: ["", "block_size=4096\n1 2", "vireo-written-map block_size=12\n", "vireo-written-map block_size=4096\n1 0",
                      "vireo-written-map block_size=4096\nx 2"])
    func aBadMapIsRefused(_ text: String) {
        #expect(throws: BlkWrittenMap.Failure.self) { try BlkWrittenMap(parsing: text) }
    }
}

private func writeFile(_ path: String, _ bytes: [UInt8]) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count
}

private func readFile(_ path: String) -> [UInt8]? {
    StatsFileReader.readBytes(path)
}
