import ArgumentParser
import Foundation
import VireoBench

/// `vireo-bench check-image`: checks a raw copy of a disk (an `rbd export`, an export's
/// file) against the written map of a `blk --verify --written-map` run.
struct CheckImageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-image",
        abstract: "Check a raw disk image against the written map of a blk --verify run.")

    @Option(help: "The raw disk image (e.g. from `rbd export`).")
    var image: String

    @Option(help: "The written map (blk --written-map).")
    var map: String

    func run() throws {
        let text: String
        do { text = try String(contentsOfFile: map, encoding: .utf8) } catch {
            throw ValidationError("cannot read \(map): \(error)")
        }
        let c = try BlkWrittenMap(parsing: text).check(image: image)
        print("check-image: \(c.checked) block(s) checked, \(c.mismatches) mismatch(es)"
              + (c.firstMismatchBlock.map { ", first at block \($0)" } ?? ""))
        if c.mismatches > 0 || c.checked == 0 { throw ExitCode(1) }
    }
}
