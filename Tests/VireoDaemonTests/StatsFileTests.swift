import Testing
@testable import VireoSys
@testable import VireoDaemon
#if canImport(Glibc)
import Glibc
#endif

@Suite struct StatsFileTests {
    @Test func rendersFamiliesOnceWithHelpTypeAndEscapedLabels() {
        var s = StatsSnapshot()
        s.counter("vireo_x_total", 3, help: "X things.", labels: ["disk": "d0"])
        s.gauge("vireo_g", 7, help: "A gauge\nwith a line feed.")
        s.counter("vireo_x_total", 4, help: "X things.", labelPairs: [("disk", "a\"b\\c\nd"), ("q", "1")])
        #expect(s.render() == """
            # HELP vireo_x_total X things.
            # TYPE vireo_x_total counter
            vireo_x_total{disk="d0"} 3
            vireo_x_total{disk="a\\"b\\\\c\\nd",q="1"} 4
            # HELP vireo_g A gauge\\nwith a line feed.
            # TYPE vireo_g gauge
            vireo_g 7

            """)
        #expect(s.contains("vireo_g") && !s.contains("vireo_y"))
    }

    @Test func metricNamesAreChecked() {
        #expect(StatsSnapshot.isValidName("vireo_a:b_1"))
        #expect(!StatsSnapshot.isValidName("1abc"))
        #expect(!StatsSnapshot.isValidName("a-b"))
        #expect(!StatsSnapshot.isValidName(""))
    }

    @Test func writesAtomicallyWithAnIncreasingSequence() throws {
        let dir = "/tmp/vireo-stats-test-\(getpid())"
        mkdir(dir, 0o755)
        defer { rmdir(dir) }
        let path = dir + "/s.prom"
        defer { unlink(path) }
        let file = StatsFile(path: path)
        var s = StatsSnapshot()
        s.counter("vireo_a_total", 1, help: "A.")
        try file.write(s)
        try file.write(s)
        let text = try readAll(path)
        #expect(text.hasPrefix("# HELP vireo_a_total A.\n# TYPE vireo_a_total counter\nvireo_a_total 1\n"))
        #expect(text.contains("\nvireo_stats_sequence 2\n"))
        #expect(file.sequence == 2)
        // Only the file itself is left in the directory (the temporary was renamed over it).
        #expect(try entries(dir) == ["s.prom"])
        // The malloc counter is not preloaded into the test runner.
        #expect(StatsFile.processAllocations == nil)
        #expect(!text.contains("vireo_process_allocations_total"))
    }

    @Test func aFailedWriteNamesTheCallAndLeavesNoFile() {
        let file = StatsFile(path: "/nonexistent-dir/vireo.prom")
        #expect(throws: SystemError(call: "open", errno: ENOENT)) { try file.write(StatsSnapshot()) }
        #expect(file.sequence == 0)
    }

    @Test func eachWriteReplacesTheWholeFile() throws {
        let path = "/tmp/vireo-stats-torn-\(getpid()).prom"
        defer { unlink(path) }
        let file = StatsFile(path: path)
        var s = StatsSnapshot()
        for i in 0..<2000 { s.counter("vireo_big_total", UInt64(i), help: "Big.", labelPairs: [("i", "\(i)")]) }
        try file.write(s)
        for _ in 0..<20 {
            try file.write(s)
            let text = try readAll(path)
            #expect(text.hasSuffix("vireo_stats_sequence \(file.sequence)\n"))
        }
    }

    private func readAll(_ path: String) throws -> String {
        guard let f = fopen(path, "r") else { throw SystemError(call: "fopen", errno: errno) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n == 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func entries(_ dir: String) throws -> [String] {
        guard let d = opendir(dir) else { throw SystemError(call: "opendir", errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
