import Foundation
import Testing
@testable import VireoBench

/// Aggregation over rounds and goal evaluation on the synthetic results
/// directory (3 rounds; round 2 missing two files; round 3 with a broken
/// one).
@Suite struct ReportResultSetTests {
    /// Equal to a relative 1e-9 (figures go through * 1e6 and / 1e6).
    func near(_ a: Double?, _ b: Double) -> Bool {
        guard let a else { return false }
        return abs(a - b) <= 1e-9 * max(1, abs(b))
    }

    @Test func roundStatsMedianAndSpread() throws {
        let odd = try #require(RoundStats(values: [3, 1, 2], rounds: 3))
        #expect(odd.median == 2 && odd.minimum == 1 && odd.maximum == 3 && odd.count == 3)
        #expect(odd.relativeSpread == 1)
        let even = try #require(RoundStats(values: [4, 1, 3, 2], rounds: 5))
        #expect(even.median == 2.5 && even.rounds == 5)
        #expect(RoundStats(values: [], rounds: 3) == nil)
        #expect(RoundStats(values: [.nan, .infinity], rounds: 3) == nil)
        let finite = try #require(RoundStats(values: [.nan, 7], rounds: 2))
        #expect(finite.values == [7] && finite.median == 7 && finite.count == 1)
        #expect(RoundStats(values: [0, 0], rounds: 2)?.relativeSpread == nil)
    }

    @Test func loadsRoundsMetaAndProblems() throws {
        let results = try ReportResultSet.load(from: try ReportFixtures.syntheticResults())
        #expect(results.rounds.map(\.number) == [1, 2, 3])
        #expect(results.meta("kernel") == "6.1.0-test" && results.meta("mode") == "short")
        #expect(results.meta.map(\.key) == ["date", "kernel", "commit", "cpus", "rounds", "mode"])
        #expect(results.problems.count == 1)
        #expect(results.problems.first?.hasPrefix("round-3/fio-local/randread-4k-qd32.json:") == true)
        #expect(results.jobs(.vireo) == ["randread-4k-qd1", "randread-4k-qd2", "randread-4k-qd4", "randread-4k-qd8",
                                         "randread-4k-qd16", "randread-4k-qd32", "randwrite-4k-qd32",
                                         "seqread-128k-qd8"])
        // Short mode: the main jobs are listed even where no round has them.
        #expect(results.jobs(.local) == ["randread-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd32", "seqread-128k-qd8"])
        #expect(results.perftestFiles == ["ib_send_lat-2", "ib_read_lat-4096", "ib_read_bw-131072", "ib_send_bw-64",
                                          "ib_send_bw-4096"])
        #expect(results.netFrameSizes == [64, 1500, 9000])
    }

    @Test func mediansOverRoundsSkippingMissingFiles() throws {
        let results = try ReportResultSet.load(from: try ReportFixtures.syntheticResults())
        #expect(results.block(.vireo, "randread-4k-qd1") { $0.latencyUs[50] }?.median == 280)
        #expect(results.block(.nvmf, "randread-4k-qd1") { $0.latencyUs[50] }?.median == 590)
        // Round 2 has no QD32 file: the median of the other two.
        let qd32 = try #require(results.block(.vireo, "randread-4k-qd32") { $0.iops })
        #expect(qd32.median == 9500 && qd32.count == 2 && qd32.rounds == 3)
        #expect(qd32.values == [9000, 10000])
        #expect(ReportFormat.spread(qd32) == "11% (2/3)")
        // Missing from every round: no figure at all.
        #expect(results.block(.nvmf, "seqread-128k-qd8") { $0.iops } == nil)
        #expect(results.block(.local, "randread-4k-qd32") { $0.iops } == nil)
        // perftest: MsgRate 5000/6000/7000 msg/s.
        let rate = try #require(results.perftestBandwidth("ib_send_bw", bytes: 4096) { $0.messagesPerSecond })
        #expect(near(rate.median, 6000) && near(rate.minimum, 5000))
        #expect(results.perftestLatency("ib_send_lat", bytes: 2) { $0.typical }?.median == 13)
        #expect(results.net(64) { $0.framesPerSecond }?.median == 500)
    }

    @Test func contractGoals() throws {
        let results = try ReportResultSet.load(from: try ReportFixtures.syntheticResults())
        let goals = Goal.contractGoals(results)
        func goal(_ id: String) throws -> Goal { try #require(goals.first { $0.id == id }, "\(id)") }
        #expect(goals.count == 18)
        // Whole-VM CPU per I/O: busy seconds per second over IOPS, each system from its own sidecar.
        let vm = try goal("vm-cpu-per-io-qd32-vs-nvmf")
        #expect(near(vm.measured?.median, (1.5e6 / 9000 + 1.5e6 / 10000) / 2) && near(vm.reference?.median, 245) && vm.status == .pass)
        // The switch (#13): drops in one job fail the goal, and say the most any job had.
        let drops = try goal("net-switch-drops")
        #expect(drops.status == .miss && drops.marginText.hasPrefix("max 3") && drops.marginText.hasSuffix("frames"))
        #expect(try goal("net-switch-bytes-copied").status == .pass)
        #expect(!goals.contains { $0.id.hasPrefix("seqwrite") })  // not measured, not listed
        // The system-call and wake-up budgets (#13): absolute figures per I/O, no reference.
        #expect(try goal("syscalls-per-io-qd32-initiator").status == .pass)
        let targetCalls = try goal("syscalls-per-io-qd32-target")
        #expect(targetCalls.status == .miss && targetCalls.ratio == nil)
        #expect(targetCalls.marginText == "2.00x over budget" && targetCalls.targetText == "<= 0.250 per I/O")
        #expect(try goal("wakeups-per-io-qd32-target").status == .pass)
        #expect(try goal("target-payload-bytes-copied").status == .pass)

        let qd1 = try goal("qd1-p50-vs-nvmf")
        #expect(near(qd1.ratio, 280.0 / 590))
        #expect(qd1.status == .pass && !qd1.isCollapse && qd1.diagnosis == nil)
        #expect(qd1.marginText == "5.1% under target")

        let readVsNvmf = try goal("randread-qd32-iops-vs-nvmf")
        #expect(near(readVsNvmf.ratio, 9500.0 / 4900) && readVsNvmf.status == .pass)
        let readVsPerftest = try goal("randread-qd32-iops-vs-perftest")
        #expect(near(readVsPerftest.ratio, 9500.0 / 6000) && readVsPerftest.status == .pass)
        #expect(readVsPerftest.note?.contains("MsgRate") == true)

        let writeVsNvmf = try goal("randwrite-qd32-iops-vs-nvmf")
        #expect(writeVsNvmf.ratio == 0.75 && writeVsNvmf.status == .miss && !writeVsNvmf.isCollapse)
        #expect(writeVsNvmf.marginText == "short by 50% (needs 2.00x)")
        // Where the time goes: CPU per I/O and its share of a CPU.
        let diagnosis = try #require(writeVsNvmf.diagnosis)
        #expect(diagnosis.contains("initiator CPU 150 µs per I/O (45% of one CPU)"))
        #expect(diagnosis.contains("target CPU 120 µs per I/O") && diagnosis.contains("2 vCPUs"))
        let writeVsPerftest = try goal("randwrite-qd32-iops-vs-perftest")
        #expect(near(writeVsPerftest.ratio, 0.5) && writeVsPerftest.status == .miss)

        // 128K: perftest's BW column (60 MiB/s) beats MsgRate on digits.
        let seq = try goal("seqread-128k-vs-ib_read_bw")
        #expect(near(seq.reference?.median, 62.91456))
        #expect(near(seq.ratio, 50 / 62.91456) && seq.status == .miss)

        // 1500 B net vs ib_send_bw at 4 KiB (nearest measured size).
        let net = try goal("net-1500-gbps-vs-ib_send_bw")
        #expect(net.title.contains("4 KiB") && net.note?.contains("nearest") == true)
        #expect(near(net.reference?.median, 0.196608))
        #expect(near(net.ratio, 0.1 / 0.196608) && net.status == .miss && !net.isCollapse)
        #expect(net.diagnosis?.contains("initiator-a CPU 12.5 µs per frame") == true)
        #expect(net.diagnosis?.contains("loss 1.0%") == true)

        // 64 B: 500 fps against 16,000 msg/s is a collapse, not noise.
        let fps = try goal("net-64-fps-vs-ib_send_bw")
        #expect(near(fps.ratio, 500.0 / 16000) && fps.status == .miss && fps.isCollapse)

        let copied = try goal("payload-bytes-copied")
        #expect(copied.status == .pass && copied.ratio == nil && copied.measured?.maximum == 0)
        // Round 3 allocated 0.5 per I/O: the median is 0, but any is a miss.
        let allocations = try goal("allocations-per-io")
        #expect(allocations.measured?.median == 0 && allocations.status == .miss)
        #expect(allocations.marginText == "max 0.500 per I/O")
    }

    @Test func goalArithmetic() throws {
        let one = RoundStats(values: [1], rounds: 1)
        let two = RoundStats(values: [2], rounds: 1)
        let ten = RoundStats(values: [10], rounds: 1)
        // Lower is better: ratio 2 against "<= 0.5" reaches a quarter of it.
        var atMost = Goal(id: "a", title: "a", requirement: .ratioAtMost(0.5), measured: two, reference: one,
                          unit: "µs", referenceLabel: "r")
        #expect(atMost.ratio == 2 && atMost.attainment == 0.25 && atMost.status == .miss && !atMost.isCollapse)
        #expect(atMost.marginText == "4.00x over target" && atMost.targetText == "<= 0.50")
        atMost.measured = RoundStats(values: [3], rounds: 1)
        #expect(atMost.isCollapse)
        // Higher is better: 1/10 of the reference against ">= 0.7".
        let atLeast = Goal(id: "b", title: "b", requirement: .ratioAtLeast(0.7), measured: one, reference: ten,
                           unit: "IOPS", referenceLabel: "r")
        #expect(atLeast.status == .miss && atLeast.isCollapse)
        #expect(atLeast.marginText == "short by 86% (needs 7.00x)")
        let passing = Goal(id: "c", title: "c", requirement: .ratioAtLeast(1.5), measured: ten, reference: two,
                           unit: "IOPS", referenceLabel: "r")
        #expect(passing.status == .pass && passing.marginText == "+233% over target")
        // A zero reference or a missing figure is n/a, never a pass.
        let zero = RoundStats(values: [0], rounds: 1)
        let noReference = Goal(id: "d", title: "d", requirement: .ratioAtLeast(1), measured: one, reference: zero,
                               unit: "x", referenceLabel: "r")
        #expect(noReference.ratio == nil && noReference.status == .notAvailable && !noReference.isCollapse)
        let missing = Goal(id: "e", title: "e", requirement: .zero, measured: nil, reference: nil, unit: "B",
                           referenceLabel: "")
        #expect(missing.status == .notAvailable)
    }

    @Test func partialResultsAreNotAvailableNotFatal() throws {
        let root = try ReportFixtures.temporaryDirectory()
        try ReportFixtures.write(ReportFixtures.perftestBandwidth(bytes: 4096, averageMiBps: 23.14, mpps: 0.005924),
                                 to: root.appendingPathComponent("round-1/perftest/ib_send_bw-4096.txt"))
        try FileManager.default.createDirectory(at: root.appendingPathComponent("round-2"),
                                                withIntermediateDirectories: true)
        let results = try ReportResultSet.load(from: root)
        #expect(results.meta.isEmpty && results.rounds.count == 2)
        let goals = Goal.contractGoals(results)
        #expect(goals.count == 18 && goals.allSatisfy { $0.status == .notAvailable })
        let summary = ReportWriter(results: results).summary()
        #expect(summary.contains("0 pass, 0 miss, 18 n/a") && !summary.contains("COLLAPSE"))
    }

    @Test func unusableInputThrows() throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-such-\(UUID().uuidString)")
        #expect(throws: ReportError.self) { try ReportResultSet.load(from: missing) }
        let empty = try ReportFixtures.temporaryDirectory()
        #expect(throws: ReportError.noResults(path: empty.path)) { try ReportResultSet.load(from: empty) }
        // Rounds that hold only broken files are no results either.
        try ReportFixtures.write("garbage", to: empty.appendingPathComponent("round-1/vireo-blk/randread-4k-qd1.json"))
        try ReportFixtures.write("", to: empty.appendingPathComponent("round-1/perftest/ib_send_lat-2.txt"))
        try ReportFixtures.write("x", to: empty.appendingPathComponent("round-x/perftest/ib_send_lat-2.txt"))
        #expect(throws: ReportError.noResults(path: empty.path)) { try ReportResultSet.load(from: empty) }
    }

    @Test func metaParsing() {
        let meta = ReportResultSet.parseMeta("# comment\ndate = 2026-11-21\n\nnoequals\n=x\nmode=short\nmode=full\nk=a=b\n")
        #expect(meta.map(\.key) == ["date", "mode", "k"])
        #expect(meta.map(\.value) == ["2026-11-21", "full", "a=b"])
    }
}
