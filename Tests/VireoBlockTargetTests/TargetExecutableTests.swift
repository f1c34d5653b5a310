import CVireoSys
import Foundation
import Testing
import VireoFabric
import VireoSys
import VireoWire
import VireoTestSupport

/// `vireo-target serve` as a process: config file plus flags, serving, SIGTERM.
@Suite(.serialized, .enabled(if: RDMAEnvironment.enabled, "needs an RDMA device (run in the lab)"))
struct TargetExecutableTests {
    let host = RDMAEnvironment.address

    static var executable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("vireo-target")
    }

    @Test func serveFromConfigAndFlagsUntilSIGTERM() throws {
        let dir = "/tmp/vireo-target-exe-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = 4400 + UInt16(getpid() % 500)
        try """
            listen = "\(host):\(port)"
            workers = 1

            [[export]]
            name = "cfg0"
            file = "\(dir)/cfg0.img"
            size = "16M"
            queue_depth = 8
            max_io = "256K"
            """.write(toFile: "\(dir)/target.toml", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = Self.executable
        p.arguments = ["serve", "--config", "\(dir)/target.toml", "--export", "name=flag0,memory,size=8M,block-size=4096",
                       "--control-socket", "\(dir)/ctl.sock"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        // Wait for the listener.
        var c: BlockTestClient?
        for _ in 0..<100 where c == nil {
            c = try? BlockTestClient(host: host, port: port, name: "cfg0", depth: 32, maxIO: 1 << 20)
            if c == nil { usleep(100_000) }
        }
        let client = try #require(c, "vireo-target serve did not come up")
        #expect(client.geometry.queueDepth == 8 && client.geometry.maxIOBytes == 256 << 10)
        try TargetIntegrationTests.writeReadPattern(client, bytes: 1 << 20)
        let flag = try BlockTestClient(host: host, port: port, name: "flag0")
        #expect(flag.geometry.blockSize == 4096 && flag.geometry.capacityBytes == 8 << 20)
        #expect(try flag.run(.flush) == .ok)

        // SIGHUP (issue #14): the file read again, only the difference applied, the daemon
        // still serving: cfg1 added, cfg0 grown (its connection remade), flag0 (a flag) kept,
        // and a worker count change named for the next restart.
        try """
            listen = "\(host):\(port)"
            workers = 2

            [[export]]
            name = "cfg0"
            file = "\(dir)/cfg0.img"
            size = "32M"
            queue_depth = 8
            max_io = "256K"

            [[export]]
            name = "cfg1"
            memory = true
            size = "4M"
            """.write(toFile: "\(dir)/target.toml", atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        var added: BlockTestClient?
        for _ in 0..<100 where added == nil {
            added = try? BlockTestClient(host: host, port: port, name: "cfg1")
            if added == nil { usleep(100_000) }
        }
        #expect(added?.geometry.capacityBytes == 4 << 20, "cfg1 served after SIGHUP")
        var grown: BlockTestClient?
        for _ in 0..<100 where grown?.geometry.capacityBytes != 32 << 20 {
            grown = try? BlockTestClient(host: host, port: port, name: "cfg0")
            if grown?.geometry.capacityBytes != 32 << 20 { grown = nil; usleep(100_000) }
        }
        #expect(grown != nil, "cfg0 grown to 32 MiB after SIGHUP")
        #expect((try? flag.run(.flush)) == .ok, "the flag's export is untouched")
        #expect(p.isRunning, "SIGHUP reloads; it does not stop the daemon")
        added = nil
        grown = nil
        c = nil
        p.terminate()  // SIGTERM
        p.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        print(log)
        #expect(p.terminationStatus == 0)
        #expect(log.contains("stopped: commands"))
        // swift-service-lifecycle's group stopped the parts in reverse order of start.
        #expect(log.contains("stopping control socket, endpoints (reverse order of start)"))
        #expect(access("\(dir)/ctl.sock", F_OK) != 0, "the control socket was closed and removed")
        #expect(log.contains("SIGHUP: export cfg1: created"))
        #expect(log.contains("SIGHUP: export cfg0: resized to 33554432 bytes"))
        #expect(log.contains("SIGHUP: workers changed: takes effect at the next restart"))
        var st = stat()
        #expect(stat("\(dir)/cfg0.img", &st) == 0 && st.st_size == 32 << 20, "grown by the SIGHUP")
    }

}

/// `vireo-target serve` refusing a bad configuration (no RDMA needed).
struct TargetExecutableConfigTests {
    @Test func badConfigExitsWithOneLinePerProblem() throws {
        let p = Process()
        p.executableURL = TargetExecutableTests.executable
        p.arguments = ["serve", "--export", "name=a,memory", "--export", "name=b,file=/x,size=1000"]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 64, "EX_USAGE")
        #expect(log.contains("export 'a': a memory export needs a size"), "\(log)")
        #expect(log.contains("export 'b': size 1000 is not a multiple of block_size 512"), "\(log)")
        #expect(!log.contains("Usage:"), "no generic usage line after the problems: \(log)")
    }

    /// A TOML value of the wrong type is reported as that, with the file and the table, not
    /// as a missing key (#14).
    @Test func aWrongTypeInTheFileIsNamedWithFileAndTable() throws {
        let path = "/tmp/vireo-target-badtype-\(getpid()).toml"
        try "workers = \"two\"\n\n[[export]]\nname = 3\nmemory = true\nsize = \"1M\"\n"
            .write(toFile: path, atomically: true, encoding: .utf8)
        defer { unlink(path) }
        let p = Process()
        p.executableURL = TargetExecutableTests.executable
        p.arguments = ["serve", "--config", path]
        let err = Pipe()
        p.standardError = err
        try p.run()
        p.waitUntilExit()
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(p.terminationStatus == 64)
        #expect(log.contains("\(path): workers must be an integer"), "\(log)")
        #expect(log.contains("\(path): export #1: name must be a string"), "\(log)")
        #expect(!log.contains("missing"), "\(log)")
        #expect(!log.contains("Usage:"), "\(log)")
    }
}
