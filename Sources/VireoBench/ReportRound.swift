import Foundation

/// The measurements of one round (`<results>/round-N/`). A file that is
/// missing or cannot be parsed is simply absent here; the reason is kept in
/// `problems` for the report.
public struct ReportRound: Sendable {
    public var number: Int
    /// perftest outputs keyed by file stem, e.g. `ib_send_lat-2`.
    public var perftest: [String: PerftestResult] = [:]
    /// Block jobs per system, keyed by job name (`randread-4k-qd1`).
    public var block: [ReportSystem: [String: ReportJobSample]] = [:]
    /// The raw vireo-blk records (for the initiator counters).
    public var vireoBlk: [String: ReportBlkRecord] = [:]
    /// vireo-net results keyed by frame size in bytes.
    public var net: [Int: ReportNetRecord] = [:]
    /// "round-2/fio-nvmf/x.json: reason" for each file that was skipped.
    public var problems: [String] = []

    public init(number: Int) { self.number = number }

    /// Files larger than this are not results (and not read).
    static let maximumFileBytes = 64 << 20

    /// Reads `directory` (a `round-N` directory).
    public static func load(from directory: URL, number: Int) -> ReportRound {
        var round = ReportRound(number: number)
        let name = directory.lastPathComponent
        for (stem, data) in files(in: directory.appendingPathComponent("perftest"), ext: "txt", round: &round, name: name) {
            do throws(PerftestParseError) {
                round.perftest[stem] = try PerftestResult.parse(String(decoding: data, as: UTF8.self))
            } catch {
                round.problems.append("\(name)/perftest/\(stem).txt: \(error)")
            }
        }
        for system in ReportSystem.allCases {
            let dir = directory.appendingPathComponent(system.directory)
            for (stem, data) in files(in: dir, ext: "json", round: &round, name: name) {
                let where_ = "\(name)/\(system.directory)/\(stem).json"
                switch system {
                case .vireo, .vireoWholeMemory, .vireoRBD:
                    do throws(ReportJSONError) {
                        let record = try ReportBlkRecord.parse(data)
                        if system == .vireo { round.vireoBlk[stem] = record }
                        round.block[system, default: [:]][stem] = ReportJobSample(record)
                    } catch {
                        round.problems.append("\(where_): \(error)")
                    }
                case .nvmf, .local, .rbdFio, .rbdNvmf:
                    do throws(FioParseError) {
                        let fio = try FioResult.parse(data)
                        if let sample = ReportJobSample(fio) {
                            round.block[system, default: [:]][stem] = sample
                        } else {
                            round.problems.append("\(where_): no job did any I/O")
                        }
                    } catch {
                        round.problems.append("\(where_): \(error)")
                    }
                }
            }
            // Whole-VM CPU beside each job, when lab-bench sampled it.
            for (stem, data) in files(in: dir, ext: "vm", round: &round, name: name) {
                round.block[system]?[stem]?.readVMCPU(String(decoding: data, as: UTF8.self))
            }
        }
        for (stem, data) in files(in: directory.appendingPathComponent("vireo-net"), ext: "json", round: &round, name: name) {
            guard let bytes = Int(stem), bytes > 0 else {
                round.problems.append("\(name)/vireo-net/\(stem).json: name is not a frame size")
                continue
            }
            do throws(ReportJSONError) {
                round.net[bytes] = try ReportNetRecord.parse(data)
            } catch {
                round.problems.append("\(name)/vireo-net/\(stem).json: \(error)")
            }
        }
        return round
    }

    /// Whether anything in this round was usable.
    public var isEmpty: Bool {
        perftest.isEmpty && block.values.allSatisfy(\.isEmpty) && net.isEmpty
    }

    /// The `.ext` files of a directory as (stem, contents), sorted by name;
    /// a missing directory is simply empty.
    private static func files(in directory: URL, ext: String, round: inout ReportRound,
                              name: String) -> [(String, Data)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory.path) else { return [] }
        var result: [(String, Data)] = []
        for entry in entries.sorted() where entry.hasSuffix(".\(ext)") && !entry.hasPrefix(".") {
            let url = directory.appendingPathComponent(entry)
            let stem = String(entry.dropLast(ext.count + 1))
            let attributes = try? FileManager.default.attributesOfItem(atPath: url.path)
            if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
                continue
            }
            if let size = attributes?[.size] as? NSNumber, size.intValue > maximumFileBytes {
                round.problems.append("\(name)/\(directory.lastPathComponent)/\(entry): larger than 64 MiB, skipped")
                continue
            }
            do {
                result.append((stem, try Data(contentsOf: url)))
            } catch {
                round.problems.append("\(name)/\(directory.lastPathComponent)/\(entry): \(error.localizedDescription)")
            }
        }
        return result
    }
}
