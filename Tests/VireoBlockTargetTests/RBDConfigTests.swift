import Testing
@testable import VireoBlockTarget
@testable import VireoTarget
import VireoDaemon
import VireoRBD
import VireoTestSupport
import Logging

/// RBD exports and `[[ceph_cluster]]` as configured: the image spec, the cluster settings,
/// and every problem named (no cluster is contacted here; Tests/lab/rbd-export.sh does).
struct RBDConfigTests {
    @Test(arguments: [
        ("rbd/vol0", "rbd", nil, "vol0", nil),
        ("rbd/tenant1/vol0", "rbd", "tenant1", "vol0", nil),
        ("pool.ssd/vol0@monday", "pool.ssd", nil, "vol0", "monday"),
        ("p/ns/i@s", "p", "ns", "i", "s"),
    ] as [(String, String, String?, String, String?)])
    func imageSpecParses(_ text: String, _ pool: String, _ ns: String?, _ image: String, _ snap: String?) throws {
        let s = try #require(RBDImageSpec(text))
        #expect(s.pool == pool && s.namespace == ns && s.image == image && s.snapshot == snap)
        #expect(s.description == text)
    }

    @Test(arguments: ["vol0", "rbd/", "/vol0", "rbd//vol0", "a/b/c/d", "rbd/vol0@", "rbd/vol 0", "rbd/vol0@a@b", ""])
    func badImageSpecIsRefused(_ text: String) {
        #expect(RBDImageSpec(text) == nil)
    }

    static let cluster = "[[ceph_cluster]]\nname = \"lab\"\nconf = \"/etc/ceph/lab.conf\"\n"

    @Test func anRBDExportReadsWithItsCluster() throws {
        let c = try TargetConfig(toml: Self.cluster + """
            client = "vireo"
            keyring = "/k"
            [[export]]
            name = "db0"
            rbd = "rbd/db0"
            io_timeout = 12
            [[export]]
            name = "snap"
            rbd = "rbd/db0@s1"
            """)
        #expect(c.cephClusters == [{
            var l = CephClusterConfig(name: "lab", configFile: "/etc/ceph/lab.conf")
            l.clientID = "vireo"
            l.keyring = "/k"
            return l
        }()])
        #expect(c.exports[0].backing == .rbd(RBDImageSpec(pool: "rbd", image: "db0")))
        #expect(c.exports[0].ioTimeoutSeconds == 12 && !c.exports[0].readOnly && c.exports[0].cephCluster == nil)
        // A snapshot is served read-only without saying so.
        #expect(c.exports[1].readOnly)
        // librados gets the export's timeout for its operations, and writes go from Vireo's buffers.
        let opts = c.cephClusters[0].settings(timeout: 12).options
        #expect(opts.contains { $0 == ("rados_osd_op_timeout", "12") })
        #expect(opts.contains { $0 == ("rbd_disable_zero_copy_writes", "false") })
        #expect(c.cephClusters[0].settings(timeout: 12) != c.cephClusters[0].settings(timeout: 30))
    }

    @Test(arguments: [
        ("[[export]]\nname = \"a\"\nrbd = \"rbd/a\"", "export 'a': an rbd export needs ceph_cluster = NAME (0 [[ceph_cluster]] configured)"),
        (cluster + "[[ceph_cluster]]\nname = \"two\"\n[[export]]\nname = \"a\"\nrbd = \"rbd/a\"", "(2 [[ceph_cluster]] configured)"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a\"\nceph_cluster = \"other\"", "ceph_cluster 'other' is not a configured [[ceph_cluster]]"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a\"\nsize = \"1G\"", "an rbd export takes its size from the image; drop size"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a@s\"\nread_only = false", "a snapshot (rbd/a@s) is served read-only"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a\"\nio_timeout = 0", "io_timeout 0.0 must be 1-3600 seconds"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"a\"", "rbd 'a' must be pool/image, pool/namespace/image, optionally @snapshot"),
        (cluster + "[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\nceph_cluster = \"lab\"", "ceph_cluster applies to rbd exports only"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a\"\nfile = \"/x\"", "needs exactly one of file, device, memory or rbd"),
        (cluster + cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a\"\nceph_cluster = \"lab\"", "ceph_cluster 'lab' is configured twice"),
        ("[[ceph_cluster]]\nname = \"a b\"\n[[export]]\nname = \"a\"\nrbd = \"rbd/a\"", "ceph_cluster 'a b': name must be 1-63 characters"),
        ("[[ceph_cluster]]\nname = \"c\"\nclient = \"client.admin\"\n[[export]]\nname = \"a\"\nrbd = \"rbd/a\"", "client 'client.admin' must be a cephx user name without 'client.'"),
        ("[[ceph_cluster]]\nname = \"c\"\nimages_per_connection = 0\n[[export]]\nname = \"a\"\nrbd = \"rbd/a\"", "images_per_connection 0 must be 1-1024"),
        ("[[ceph_cluster]]\nconf = \"/x\"\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"", "name is missing"),
        (cluster + "[[export]]\nname = \"a\"\nmemory = true\nsize = \"1M\"\ngroup = \"g0\"", "group applies to rbd exports only"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a@s\"\ngroup = \"g0\"", "a group serves an image, not a snapshot"),
        (cluster + "[[export]]\nname = \"a\"\nrbd = \"rbd/a\"\ngroup = \"a group name longer than twenty\"", "group 'a group name longer than twenty' must be 1-20 characters"),
    ])
    func badRBDConfigIsReported(_ text: String, _ expected: String) {
        expectConfigProblem(expected) { _ = try TargetConfig(toml: text) }
    }

    /// A gateway group's exports answer GET_ID with the group, so the guest's disk serial is
    /// the same through every gateway; the running configuration keeps the group.
    @Test func aGroupIsTheDisksIdentifier() throws {
        let c = try TargetConfig(toml: Self.cluster + "[[export]]\nname = \"vol0\"\nrbd = \"rbd/vol0\"\ngroup = \"g0\"\n")
        #expect(c.exports[0].group == "g0")
        #expect(try TargetConfig(toml: c.tomlText) == c)
        #expect(Export.identifier(for: c.exports[0]) == Array("g0".utf8) + [UInt8](repeating: 0, count: 18))
        let m = try Export(config: ExportConfig(name: "vol0", backing: .memory, size: 1 << 20), logger: .init(label: "t"))
        #expect(m.identifier == Array("vol0".utf8) + [UInt8](repeating: 0, count: 16))
    }

    /// An export naming a cluster the daemon does not know fails to open with the name in the
    /// error, before any connection attempt.
    @Test func anUnknownClusterFailsTheExportClearly() {
        var e = ExportConfig(name: "a", backing: .rbd(RBDImageSpec(pool: "rbd", image: "a")))
        e.cephCluster = "nowhere"
        do {
            _ = try Export(config: e, ceph: CephClusters([CephClusterConfig(name: "lab")]), logger: .init(label: "t"))
            Issue.record("opened an export on an unknown cluster")
        } catch {
            #expect(error.description.contains("ceph_cluster 'nowhere' [not configured]"))
        }
    }
}
