import Foundation
import Testing
import VireoFuzz

/// The fuzz harnesses in the ordinary test run: every seed built by the real
/// encoders and every committed corpus input (Fuzz/corpus/<harness>/) goes
/// through its harness, whose invariant checks trap on a violation. A crash
/// input that was fixed stays here as a replayed file.
@Suite struct CorpusReplayTests {
    static let corpusRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/corpus")

    @Test(arguments: FuzzHarness.all.map(\.name))
    func seedsAndCorpusReplay(name: String) throws {
        let harness = try #require(FuzzHarness.all.first { $0.name == name })
        let seeds = harness.seeds()
        #expect(seeds.count >= 2, "\(name): too few seeds")
        for seed in seeds { seed.withUnsafeBytes { harness.run($0) } }

        let dir = Self.corpusRoot.appendingPathComponent(name)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { !$0.hasPrefix(".") }
        // The committed corpus holds at least the seeds (deploy/fuzz/run --write-seeds).
        #expect(files.count >= seeds.count, "\(name): \(files.count) corpus files, \(seeds.count) seeds")
        for file in files.sorted() {
            let bytes = try #require(FuzzDriver.readFile(dir.appendingPathComponent(file).path))
            bytes.withUnsafeBytes { harness.run($0) }
        }
    }

    @Test func committedSeedsMatchTheEncoders() throws {
        // A seed file that no longer matches what the encoders produce means the
        // wire format moved and the corpus should be regenerated.
        for harness in FuzzHarness.all {
            for (i, seed) in harness.seeds().enumerated() {
                let path = Self.corpusRoot.appendingPathComponent(harness.name).appendingPathComponent("seed-\(i)").path
                let committed = try #require(FuzzDriver.readFile(path), "\(path) missing: run deploy/fuzz/run --write-seeds")
                #expect(committed == seed, "\(path) differs from the encoders' seed")
            }
        }
    }
}
