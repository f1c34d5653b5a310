import Testing
@testable import VireoBlockTarget
@testable import VireoTarget
import VireoDaemon
import VireoTestSupport

struct ConfigTests {
    @Test func fullTOMLParses() throws {
        let c = try TargetConfig(toml: """
            listen = "10.99.0.1:4420"
            workers = 3
            busy_poll = true

            [[export]]
            name = "vol0"
            file = "/var/lib/vireo/vol0.img"
            size = "1G"
            block_size = 4096
            read_only = false
            max_queues = 8
            max_queues_per_host = 4
            queue_depth = 64
            max_io = "512K"
            max_segments = 32
            inline_max = 2048

            [[export]]
            name = "ram"
            memory = true
            size = 67108864

            [[export]]
            name = "disk"
            device = "/dev/nvme0n1"
            read_only = true
            """)
        #expect(c.listen == "10.99.0.1:4420" && c.workers == 3 && c.busyPoll)
        #expect(c.exports.count == 3)
        let v = c.exports[0]
        #expect(v.name == "vol0" && v.backing == .file("/var/lib/vireo/vol0.img") && v.size == 1 << 30)
        #expect(v.blockSize == 4096 && !v.readOnly && v.maxQueues == 8 && v.maxQueuesPerHost == 4)
        #expect(v.queueDepth == 64 && v.maxIO == 512 << 10 && v.maxSegments == 32 && v.inlineMax == 2048)
        #expect(c.exports[1].backing == .memory && c.exports[1].size == 64 << 20)
        #expect(c.exports[2].backing == .device("/dev/nvme0n1") && c.exports[2].readOnly && c.exports[2].size == nil)
    }

    @Test func defaultsApply() throws {
        let c = try TargetConfig(toml: "[[export]]\nname = \"a\"\nmemory = true\nsize = \"64M\"\n")
        #expect(c.listen == "0.0.0.0:4420" && c.workers == 2 && !c.busyPoll)
        let e = c.exports[0]
        #expect(e.blockSize == 512 && e.maxQueues == 16 && e.queueDepth == 128 && e.maxIO == 1 << 20)
        #expect(e.maxSegments == 128 && e.inlineMax == 4096 && !e.readOnly)
        #expect(c.statsFile == nil && c.statsIntervalSeconds == nil)
        let s = try TargetConfig(toml: "stats_file = \"/run/t.prom\"\nstats_interval = 0.5\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"64M\"\n")
        #expect(s.statsFile == "/run/t.prom" && s.statsIntervalSeconds == 0.5)
        #expect(throws: ConfigError.self) { try TargetConfig(toml: "stats_interval = -1\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"64M\"\n") }
    }

    /// Peer liveness: defaults 5 s / 15 s, both settable, the timeout longer than the keepalive.
    @Test func keepaliveAndPeerTimeout() throws {
        let export = "[[export]]\nname = \"a\"\nmemory = true\nsize = \"64M\"\n"
        let d = try TargetConfig(toml: export)
        #expect(d.keepaliveSeconds == 5 && d.peerTimeoutSeconds == 15)
        let c = try TargetConfig(toml: "keepalive = 0.5\npeer_timeout = 2\n" + export)
        #expect(c.keepaliveSeconds == 0.5 && c.peerTimeoutSeconds == 2)
        do {
            _ = try TargetConfig(toml: "keepalive = 10\npeer_timeout = 10\n" + export)
            Issue.record("a peer timeout no longer than the keepalive was accepted")
        } catch {
            #expect(error.problems == ["peer_timeout 10.0 must be longer than keepalive (10.0) and at most 3600 seconds"])
        }
        #expect(throws: ConfigError.self) { try TargetConfig(toml: "keepalive = 0\n" + export) }
        #expect(throws: ConfigError.self) { try TargetConfig(toml: "peer_timeout = \"soon\"\n" + export) }
    }

    /// Each bad document yields one clear line naming the problem.
    @Test(arguments: [
        ("workers = 0\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"", "workers 0 must be 1-64"),
        ("listen = \"x:1\"", "no exports configured"),
        ("[[export]]\nname = \"a\"\nsize = \"1M\"", "export 'a': needs exactly one of file, device, memory or rbd"),
        ("[[export]]\nname = \"a\"\nmemory = true\nfile = \"/x\"\nsize = \"1M\"", "needs exactly one of file, device, memory or rbd"),
        ("[[export]]\nname = \"a\"\nmemory = true", "export 'a': a memory export needs a size"),
        ("[[export]]\nname = \"a b\"\nmemory = true\nsize = \"1M\"", "name must be 1-23 characters"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"lots\"", "export 'a': size must be a byte count"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\nblock_size = 1024", "block_size 1024 must be 512 or 4096"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = 1000", "size 1000 is not a multiple of block_size 512"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\nqueue_depth = 5000", "queue_depth 5000 must be 1-1024"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\nmax_io = \"32M\"", "max_io 33554432 must be a multiple of 512"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\nmax_segments = 0", "max_segments 0 must be 1-256"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\ninline_max = \"64K\"", "inline_max 65536 must be 0-16384"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\ncolour = 3", "export 'a': unknown key 'colour'"),
        ("[[export]]\nname = \"a\"\ndevice = \"/dev/x\"\nsize = \"1M\"", "takes its size from the device"),
        ("[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"",
         "export 'a' is configured twice"),
        ("threads = 2", "unknown top-level key 'threads'"),
        ("workers = \"two\"", "workers must be an integer"),
        ("listen = ", "TOML syntax error at line 1"),
    ])
    func badTOMLIsReported(_ text: String, _ expected: String) {
        expectConfigProblem(expected) { _ = try TargetConfig(toml: text) }
    }

    @Test func badConfigListsEveryProblem() {
        do {
            _ = try TargetConfig(toml: "workers = 0\n[[export]]\nname = \"a\"\nmemory = true\nblock_size = 7")
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 3, "\(error.problems)")
        }
    }

    @Test func exportFlagParses() throws {
        let e = try ExportConfig(flag: "name=vol0,file=/tmp/vol0.img,size=64M,ro,block-size=4096")
        #expect(e.name == "vol0" && e.backing == .file("/tmp/vol0.img") && e.size == 64 << 20)
        #expect(e.readOnly && e.blockSize == 4096)
        let m = try ExportConfig(flag: "name=ram,memory,size=1G,queue-depth=32,max-io=256K,max-segments=8,inline-max=0,max-queues=2")
        #expect(m.backing == .memory && m.queueDepth == 32 && m.maxIO == 256 << 10 && m.maxSegments == 8)
        #expect(m.inlineMax == 0 && m.maxQueues == 2)
        let d = try ExportConfig(flag: "name=d,device=/dev/sdb")
        #expect(d.backing == .device("/dev/sdb"))
    }

    @Test(arguments: [
        ("file=/tmp/x,size=1M", "name is missing (e.g. name=vol0)"),
        ("name=a,size=1M", "--export name=a,size=1M: needs exactly one of file, device, memory or rbd"),
        ("name=a,memory,size=big", "size needs a byte count"),
        ("name=a,memory,size=1M,colour=red", "unknown key 'colour'"),
        ("name=a,memory,size=1M,queue-depth=x", "queue-depth needs an integer"),
    ])
    func badExportFlagIsReported(_ text: String, _ expected: String) {
        expectConfigProblem(expected) { _ = try ExportConfig(flag: text) }
    }
}
