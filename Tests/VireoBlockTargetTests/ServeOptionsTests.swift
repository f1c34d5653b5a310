import Foundation
import Testing
import VireoDaemon
@testable import VireoTarget

/// `vireo-target serve`'s command line resolved against its configuration file: the
/// executable only fills `TargetServeOptions`, so this is where flags meet the file.
struct ServeOptionsTests {
    static func file(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "vireo-target-\(UInt32.random(in: 0...UInt32.max)).toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func flagsAddToAndOverrideTheFile() throws {
        let path = try Self.file("listen = \"10.0.0.1:4420\"\nworkers = 3\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"64M\"\n")
        defer { unlink(path) }
        var o = TargetServeOptions()
        o.configFile = path
        o.workers = 1
        o.exports = ["name=b,memory,size=32M"]
        o.networks = ["name=lan0"]
        o.keepaliveSeconds = 2
        o.peerTimeoutSeconds = 9
        let c = try o.resolve()
        #expect(c.listen == "10.0.0.1:4420" && c.workers == 1)
        #expect(c.exports.map(\.name) == ["a", "b"] && c.networks.map(\.name) == ["lan0"])
        #expect(c.keepaliveSeconds == 2 && c.peerTimeoutSeconds == 9)
    }

    /// Every problem at once: bad flags and the checks after them, the file's named by its path.
    @Test func everyProblemIsReportedOnceNamingItsSource() throws {
        var o = TargetServeOptions()
        o.exports = ["name=a,memory", "name=b,bogus=1,memory,size=1M"]
        o.statsIntervalSeconds = 0
        do {
            _ = try o.resolve()
            Issue.record("bad flags were accepted")
        } catch {
            #expect(error.problems.contains("--stats-interval must be positive"))
            #expect(error.problems.contains { $0.contains("unknown key 'bogus'") })
        }
        let path = try Self.file("workers = 0\n[[export]]\nname = \"a\"\nmemory = true\nsize = \"64M\"\n")
        defer { unlink(path) }
        o = TargetServeOptions()
        o.configFile = path
        #expect(throws: ConfigError(problems: ["\(path): workers 0 must be 1-64"])) { try o.resolve() }
        o.configFile = "/nonexistent/vireo.toml"
        do {
            _ = try o.resolve()
            Issue.record("a missing file was accepted")
        } catch {
            #expect(error.problems.count == 1 && error.problems[0].hasPrefix("/nonexistent/vireo.toml: cannot open: open"))
        }
    }
}
