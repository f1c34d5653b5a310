import Testing
import VireoFabric
@testable import VireoInitiator
import VireoDaemon

@Suite struct ConfigTests {
    @Test func diskOptionWithEveryKey() throws {
        let d = try DiskConfig.parse(diskOption:
            "socket=/run/vireo/vm1-disk0.sock,target=10.99.0.1:4420,export=vol0,queues=2,queue-depth=64,ro,loss-timeout=30s")
        #expect(d == DiskConfig(socket: "/run/vireo/vm1-disk0.sock", target: FabricAddress(host: "10.99.0.1", port: 4420),
                                export: "vol0", queues: 2, queueDepth: 64, readOnly: true,
                                lossTimeoutNanoseconds: 30_000_000_000))
    }

    @Test func diskOptionDefaults() throws {
        let d = try DiskConfig.parse(diskOption: "socket=/tmp/a.sock,target=[fe80::1]:4420,export=vol0")
        #expect(d.queues == 1 && d.queueDepth == 128 && !d.readOnly)
        #expect(d.lossTimeoutNanoseconds == 120_000_000_000)
        #expect(d.target.host == "fe80::1")
    }

    @Test func everyProblemIsOneLine() {
        do {
            _ = try DiskConfig.parse(diskOption: "target=host,export=no/slash,queues=0,queue-depth=3,color=red,loss-timeout=soon")
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 7, "\(error.problems)")
            #expect(error.problems.contains { $0.contains("unknown key 'color'") })
            #expect(error.problems.contains { $0.contains("socket is missing") })
            #expect(error.problems.contains { $0.contains("missing :port") })
            #expect(error.problems.contains { $0.contains("export 'no/slash'") })
            #expect(error.problems.contains { $0.contains("queues must be 1...64, not 0") })
            #expect(error.problems.contains { $0.contains("queue-depth must be a power of two") })
            #expect(error.problems.contains { $0.contains("loss-timeout needs a duration such as 120s, 500ms or 2m, not 'soon'") })
            #expect(error.problems.allSatisfy { !$0.contains("\n") })
        }
    }

    @Test func tomlDisks() throws {
        let text = """
        [[disk]]
        socket = "/run/vireo/vm1-disk0.sock"
        target = "10.99.0.1:4420"
        export = "vol0"
        queues = 2
        queue_depth = 256
        loss_timeout = "2m"

        [[disk]]
        socket = "/run/vireo/vm1-disk1.sock"
        target = "10.99.0.1:4420"
        export = "vol1"
        read_only = true
        loss_timeout = 5
        """
        let disks = try DiskConfig.parse(toml: text, source: "vireo.toml")
        #expect(disks.count == 2)
        #expect(disks[0].queues == 2 && disks[0].queueDepth == 256 && disks[0].lossTimeoutNanoseconds == 120_000_000_000)
        #expect(disks[1].readOnly && disks[1].export == "vol1" && disks[1].lossTimeoutNanoseconds == 5_000_000_000)
        try DiskConfig.checkUnique(disks)
    }

    @Test func tomlProblemsNameTheFileAndDisk() {
        let text = """
        colour = 1
        [[disk]]
        socket = 7
        target = "10.99.0.1"
        export = "vol0"
        read_only = "yes"
        """
        do {
            _ = try DiskConfig.parse(toml: text, source: "bad.toml")
            Issue.record("accepted")
        } catch {
            #expect(error.problems.count == 4, "\(error.problems)")
            #expect(error.problems.allSatisfy { $0.hasPrefix("bad.toml") })
            #expect(error.problems.contains { $0.contains("unknown top-level key 'colour'") })
            #expect(error.problems.contains { $0.contains("disk #1: socket must be a string") })
            #expect(error.problems.contains { $0.contains("read_only must be true or false") })
        }
        #expect(throws: ConfigError.self) { try DiskConfig.parse(toml: "[[disk", source: "x.toml") }
        #expect(throws: ConfigError.self) { try DiskConfig.parse(toml: "", source: "x.toml") }
    }

    @Test func duplicateSocketsAndNoDisks() throws {
        let a = try DiskConfig.parse(diskOption: "socket=/tmp/a,target=1.2.3.4:1,export=v")
        #expect(throws: ConfigError(problems: ["socket /tmp/a is used by more than one disk"])) { try DiskConfig.checkUnique([a, a]) }
        #expect(throws: ConfigError.self) { try DiskConfig.checkUnique([]) }
    }
}
