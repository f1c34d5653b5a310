import ArgumentParser
import VireoBench
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// `vireo-bench blk`: the virtio-blk load generator (options only; the engine is `BlkBench`).
struct BlkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blk",
        abstract: "Drive a vhost-user virtio-blk backend as a VMM would and measure latency, IOPS and MB/s.")

    @Option(help: "vhost-user socket of the backend (the initiator's --disk socket).")
    var socket: String

    @Option(help: "randread, randwrite, read, write or randrw.")
    var rw: String = "randread"

    @Option(help: "Percentage of reads for randrw.")
    var readPercent: Int = 70

    @Option(help: "Percentage of writes sent as WRITE_ZEROES (with --verify the block then reads as zeros).")
    var zeroesPercent: Int = 0

    @Option(help: "Percentage of writes sent as DISCARD (with --verify the block is unknown until written again).")
    var discardPercent: Int = 0

    @Option(help: "Bytes per request (e.g. 4K, 128K).")
    var bs: String = "4K"

    @Option(help: "Requests in flight per queue.")
    var qd: Int = 1

    @Option(help: "Virtqueues driven, one thread each.")
    var queues: Int = 1

    @Option(help: "Measured seconds.")
    var runtime: Double = 10

    @Option(help: "Seconds of load before measuring.")
    var ramp: Double = 1

    @Option(help: "Bytes of the disk used from offset 0 (default: the whole disk).")
    var span: String?

    @Flag(help: "Writes carry a pattern of (offset, generation); reads check it; written blocks are read back at the end.")
    var verify = false

    @Option(help: "Guest memory (memfd) size.")
    var memory: String = "256M"

    @Option(name: .customLong("pid"), help: ArgumentHelp("NAME=PID whose CPU time to sample (initiator, target). Repeatable.", valueName: "name=pid"))
    var pids: [String] = []

    @Option(name: .customLong("stats"), help: ArgumentHelp("initiator=PATH or target=PATH: a daemon's --stats-file (needs --pid NAME=PID). Repeatable.", valueName: "name=path"))
    var stats: [String] = []

    @Option(help: "Used-ring polls before sleeping on the call eventfd.")
    var spin: Int = 200

    @Option(help: "If the backend closes the socket, reconnect for up to this many seconds as a VMM does (same memory and rings; requests in flight issued again with the same data). 0: a disconnect fails the run.")
    var reconnect: Double = 0

    @Option(help: "End the run early (window closed, then the --verify read-back) once this file exists.")
    var stopFile: String?

    @Option(help: "With --verify: after the read-back and a FLUSH on each queue, write each written block's last acknowledged generation here (for check-image).")
    var writtenMap: String?

    @Option(help: "A label carried into the JSON.")
    var label: String = ""

    @Option(help: "Write the JSON result to this file.")
    var json: String?

    func run() throws {
        guard let pattern = BlkJob.Pattern(rawValue: rw) else {
            throw ValidationError("--rw is one of \(BlkJob.Pattern.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let bsBytes = parseByteCount(bs), let memoryBytes = parseByteCount(memory) else {
            throw ValidationError("--bs and --memory take sizes such as 4K or 256M")
        }
        var job = BlkJob(socket: socket)
        job.pattern = pattern
        job.readPercent = readPercent
        job.zeroesPercent = zeroesPercent
        job.discardPercent = discardPercent
        job.blockSize = bsBytes
        job.queueDepth = qd
        job.queues = queues
        job.runtimeSeconds = runtime
        job.rampSeconds = ramp
        job.verify = verify
        job.memoryBytes = memoryBytes
        job.spinIterations = spin
        job.reconnectSeconds = reconnect
        job.stopFile = stopFile
        if writtenMap != nil && !verify { throw ValidationError("--written-map needs --verify") }
        job.writtenMap = writtenMap
        if let span {
            guard let s = parseByteCount(span) else { throw ValidationError("--span takes a size such as 64M") }
            job.spanBytes = UInt64(s)
        }
        var bench = BlkBench(job: job)
        bench.label = label
        for p in pids {
            let kv = p.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, let pid = Int32(kv[1]), pid > 0 else { throw ValidationError("--pid takes NAME=PID") }
            bench.pids.append((String(kv[0]), pid))
        }
        for s in stats {
            let kv = s.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == "initiator" || kv[0] == "target" else {
                throw ValidationError("--stats takes initiator=PATH or target=PATH")
            }
            if kv[0] == "initiator" { bench.initiatorStats = String(kv[1]) } else { bench.targetStats = String(kv[1]) }
        }
        if bench.targetStats != nil && !bench.pids.contains(where: { $0.name == "target" }) {
            throw ValidationError("--stats target=PATH needs --pid target=PID (to send SIGUSR1)")
        }
        if bench.initiatorStats != nil && !bench.pids.contains(where: { $0.name == "initiator" }) {
            throw ValidationError("--stats initiator=PATH needs --pid initiator=PID (to send SIGUSR1)")
        }
        bench.log = { printErr("vireo-bench blk: \($0)") }
        let result: BlkResult
        do { result = try bench.run() } catch {
            printErr("vireo-bench blk: \(error)")
            throw ExitCode(2)
        }
        print(result.summary)
        if let json {
            guard let f = fopen(json, "w") else { throw ValidationError("cannot write \(json): \(String(cString: strerror(errno)))") }
            fputs(result.json.text + "\n", f)
            fclose(f)
        }
        if result.errors > 0 || !result.problems.isEmpty { throw ExitCode(1) }
    }
}

private func printErr(_ s: String) {
    let line = Array((s + "\n").utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
