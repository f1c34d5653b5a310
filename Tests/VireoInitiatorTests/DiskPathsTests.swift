import Testing
import VireoFabric
@testable import VireoInitiator
import VireoDaemon
import VireoTestSupport

/// A disk's paths through a gateway group: how they are configured, and how the active
/// one moves when a connect over it fails (the supervisor's part runs in
/// Tests/lab/rbd-gateways.sh, against real gateways being killed).
@Suite struct DiskPathsTests {
    static let a = FabricAddress(host: "10.0.0.1", port: 4420), b = FabricAddress(host: "10.0.0.2", port: 4420)
    static let c = FabricAddress(host: "10.0.0.3", port: 4421)

    @Test func severalTargetsAreOneDisksPaths() throws {
        let d = try DiskConfig.parse(diskOption: "socket=/s,target=10.0.0.1:4420,10.0.0.2:4420,10.0.0.3:4421,export=vol0,queues=2")
        #expect(d.target == Self.a && d.standbyTargets == [Self.b, Self.c] && d.paths == [Self.a, Self.b, Self.c])
        #expect(d.queues == 2 && d.export == "vol0")
        let t = try DiskConfig.parse(toml: "[[disk]]\nsocket = \"/s\"\ntarget = \"10.0.0.1:4420,10.0.0.2:4420\"\nexport = \"vol0\"\n")
        #expect(t[0].paths == [Self.a, Self.b])
        // The running configuration writes them back the same way.
        var serve = ServeConfig()
        serve.disks = [d]
        #expect(try ServeConfig.parse(toml: serve.tomlText).disks == [d])
    }

    @Test(arguments: [
        ("socket=/s,target=10.0.0.1:4420,10.0.0.1:4420,export=v", "target '10.0.0.1:4420' is given twice"),
        ("socket=/s,target=10.0.0.1:4420,nowhere,export=v", "unknown key 'nowhere'"),
        ("socket=/s,target=10.0.0.1:4420,b:1,c:1,d:1,e:1,f:1,g:1,h:1,i:1,export=v", "target lists 9 paths; at most 8"),
    ])
    func badPathsAreReported(_ text: String, _ expected: String) {
        expectConfigProblem(expected) { _ = try DiskConfig.parse(diskOption: text) }
    }

    @Test func aNICTakesOneTarget() {
        expectConfigProblem("target takes one \"host:port\" here (several paths are for disks)") {
            _ = try NicConfig.parse(nicOption: "socket=/s,target=10.0.0.1:4420,10.0.0.2:4420,network=lan0")
        }
    }

    /// A failed connect over the active path moves I/O to the next (wrapping); a failure on a
    /// path that is no longer active (another queue moved first) moves nothing.
    @Test func aFailedActivePathMovesToTheNext() {
        let p = DiskPaths([Self.a, Self.b, Self.c])
        #expect(p.active == 0 && p.snapshot().map(\.state) == [.active, .standby, .standby])
        #expect(p.failed(0, "connection refused") == 1)
        #expect(p.active == 1)
        #expect(p.failed(0, "connection refused again") == nil, "a second queue's failure on the old path moves nothing")
        #expect(p.active == 1 && p.switches.load(ordering: .relaxed) == 1)
        let s = p.snapshot()
        #expect(s[0].state == .failed && s[0].lastError == "connection refused again" && s[1].state == .active)
        #expect(p.failed(1, "x") == 2 && p.failed(2, "y") == 0, "wraps to the first")
        p.connected(0)
        #expect(p.snapshot()[0].state == .active && p.snapshot()[0].lastError == nil)
        let one = DiskPaths([Self.a])
        #expect(one.failed(0, "x") == nil && one.active == 0, "a single path never switches")
    }

    /// Probes keep the standby paths' state; a failover skips a path whose probe failed.
    @Test func probesMarkStandbyPathsAndFailoverPrefersAGoodOne() {
        let p = DiskPaths([Self.a, Self.b, Self.c])
        #expect(p.probed(1, error: "nothing listens at b") == .standby, "a change returns the state before")
        #expect(p.probed(1, error: "nothing listens at b") == nil, "no change, nothing to log")
        #expect(p.probed(2, error: nil) == nil, "never tried counts as standby already")
        #expect(p.probed(0, error: "x") == nil && p.snapshot()[0].state == .active, "the active path is not probed")
        #expect(p.snapshot().map(\.state) == [.active, .failed, .standby])
        #expect(p.snapshot()[1].lastError == "nothing listens at b")
        #expect(p.failed(0, "gateway gone") == 2, "skips the path that failed its probe")
        #expect(p.snapshot().map(\.state) == [.failed, .failed, .active])
        #expect(p.failed(2, "gone too") == 0, "none known good: the next path")
        #expect(p.probed(1, error: nil) == .failed && p.snapshot()[1].lastError == nil)
    }
}
