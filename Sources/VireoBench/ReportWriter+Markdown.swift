import Foundation

extension ReportWriter {
    /// The whole `report.md`.
    public func markdown() -> String {
        var md = "# \(Self.cell(title))\n\n"
        md += metaLine() + "\n\n"
        md += "Each figure is the median over the rounds that measured it; *spread* is (max − min) / median "
            + "and how many rounds had it. MB/s = 10^6 bytes/s everywhere (perftest's \"MB/sec\" is MiB/s and is "
            + "converted). Ratios are vireo / peer, between medians. A figure no round measured is n/a.\n\n"
        md += "## How to reproduce\n\n"
        md += "```sh\ndeploy/bench/run            # boots the lab, runs every round, writes the results and this report\n"
        md += "deploy/bench/run --short    # CI's version: one round, short jobs, goals table on stdout\n"
        md += "vireo-bench report --results RESULTS --out OUT [--summary]   # rebuild the report from a results directory\n"
        md += "```\n\n"
        md += goalsSection()
        md += "## Plots\n\n"
        md += "![4K QD1 randread latency percentiles](latency-percentiles.svg)\n\n"
        md += "![4K randread IOPS vs queue depth](iops-vs-qd.svg)\n\n"
        md += "![Throughput vs size](throughput-vs-size.svg)\n\n"
        md += perftestSection()
        md += blockSection()
        md += rbdSection()
        md += netSection()
        md += metaSection()
        return md
    }

    private func metaLine() -> String {
        var facts: [String] = []
        if let date = results.meta("date") { facts.append(date) }
        if let kernel = results.meta("kernel") { facts.append("kernel \(kernel)") }
        if let commit = results.meta("commit") { facts.append("commit `\(commit)`") }
        if let cpus = results.meta("cpus") {
            let model = results.meta("cpu_model").map { " (\($0))" } ?? ""
            facts.append("\(cpus) vCPUs\(model)")
        }
        if let device = results.meta("device") {
            facts.append("RDMA device \(device)\(results.meta("lab") == "1" ? " (soft-RoCE lab, TCG)" : "")")
        }
        let rounds = results.rounds.count
        var roundText = "\(rounds) round\(rounds == 1 ? "" : "s") measured"
        if let planned = results.meta("rounds"), planned != String(rounds) { roundText += " (\(planned) planned)" }
        facts.append(roundText)
        if let mode = results.meta("mode") { facts.append("\(mode) mode") }
        return facts.map(Self.cell).joined(separator: " · ")
    }

    private func goalsSection() -> String {
        var md = "## Goals\n\n"
        md += "| Goal | vireo | Reference | Ratio | Target | Result | By how much |\n"
        md += "|---|---:|---:|---:|---|---|---|\n"
        var notes: [String] = []
        for goal in goals {
            var goalCell = Self.cell(goal.title)
            if let note = goal.note {
                notes.append(note)
                goalCell += " [\(notes.count)]"
            }
            let reference = goal.reference.map {
                "\(Self.cell(goal.referenceLabel)) \(Self.figure($0, goal.referenceUnit ?? goal.unit))"
            } ?? (goal.referenceLabel.isEmpty ? "—" : "\(Self.cell(goal.referenceLabel)) n/a")
            let result: String
            switch goal.status {
            case .pass: result = "✅ pass"
            case .miss: result = goal.isCollapse ? "❌ **miss (COLLAPSE?)**" : "❌ miss"
            case .notAvailable: result = "n/a"
            }
            md += "| \(goalCell) | \(Self.figure(goal.measured, goal.unit)) | \(reference) | "
                + "\(goal.ratio.map(ReportFormat.ratio) ?? "—") | \(goal.targetText.replacingOccurrences(of: "<=", with: "≤").replacingOccurrences(of: ">=", with: "≥")) | \(result) | "
                + "\(Self.cell(goal.status == .notAvailable ? "" : goal.marginText)) |\n"
        }
        md += "\n"
        for (i, note) in notes.enumerated() { md += "\(i + 1). \(Self.cell(note))\n" }
        if !notes.isEmpty { md += "\n" }
        let misses = goals.filter { $0.status == .miss && $0.diagnosis != nil }
        if !misses.isEmpty {
            md += "### Where the time goes (missed goals)\n\n"
            for goal in misses {
                md += "- **\(Self.cell(goal.title))**: \(Self.cell(goal.diagnosis ?? ""))\n"
            }
            md += "\n"
        }
        return md
    }

    private func perftestSection() -> String {
        var md = "## perftest (same boot, same RDMA device)\n\n"
        let files = results.perftestFiles
        // By what parsed, else by name (a run that failed everywhere).
        func isLatency(_ name: String) -> Bool {
            for round in results.rounds {
                if let result = round.perftest[name] { return result.latencyRows != nil }
            }
            return name.contains("_lat-")
        }
        let latency = files.filter(isLatency)
        let bandwidth = files.filter { !isLatency($0) }
        md += "### Latency (µs)\n\n"
        if latency.isEmpty {
            md += "No perftest latency test measured.\n\n"
        } else {
            md += "| Test | Size | t_typical | t_avg | p99 | p99.9 | t_min | Spread (t_typical) |\n"
            md += "|---|---:|---:|---:|---:|---:|---:|---:|\n"
            for name in latency {
                guard let (tool, bytes) = Self.splitPerftestName(name) else { continue }
                let typical = results.perftestLatency(tool, bytes: bytes) { $0.typical }
                md += "| \(Self.cell(tool)) | \(ReportFormat.bytes(bytes)) | \(Self.median(typical)) | "
                    + "\(Self.median(results.perftestLatency(tool, bytes: bytes) { $0.average })) | "
                    + "\(Self.median(results.perftestLatency(tool, bytes: bytes) { $0.p99 })) | "
                    + "\(Self.median(results.perftestLatency(tool, bytes: bytes) { $0.p999 })) | "
                    + "\(Self.median(results.perftestLatency(tool, bytes: bytes) { $0.minimum })) | "
                    + "\(ReportFormat.spread(typical)) |\n"
            }
            md += "\nib_send_lat and ib_write_lat report half the round trip; ib_read_lat reports the full round trip "
                + "of an RDMA READ. t_typical is perftest's median.\n\n"
        }
        md += "### Bandwidth\n\n"
        if bandwidth.isEmpty {
            md += "No perftest bandwidth test measured.\n\n"
        } else {
            md += "| Test | Size | MB/s | Gbit/s | Messages/s | Spread (MB/s) |\n"
            md += "|---|---:|---:|---:|---:|---:|\n"
            for name in bandwidth {
                guard let (tool, bytes) = Self.splitPerftestName(name) else { continue }
                let mbps = results.perftestBandwidth(tool, bytes: bytes) { $0.megabytesPerSecond }
                md += "| \(Self.cell(tool)) | \(ReportFormat.bytes(bytes)) | \(Self.median(mbps)) | "
                    + "\(Self.median(results.perftestBandwidth(tool, bytes: bytes) { $0.bytesPerSecond.map { $0 * 8 / 1e9 } })) | "
                    + "\(Self.median(results.perftestBandwidth(tool, bytes: bytes) { $0.messagesPerSecond })) | "
                    + "\(ReportFormat.spread(mbps)) |\n"
            }
            md += "\nFrom the MsgRate column (× size) or the BW average column (MiB/s, converted), whichever perftest "
                + "printed with more significant digits.\n\n"
        }
        return md
    }

    private func blockSection() -> String {
        var md = "## Block jobs\n\n"
        md += "Latency: vireo-bench measures each request from posting it on the virtqueue to its completion; fio "
            + "reports completion latency (clat) unless the job set lat_percentiles=1 (lat).\n\n"
        for system in ReportSystem.allCases {
            md += "### \(system.displayName)\n\n"
            let jobs = results.jobs(system)
            guard !jobs.isEmpty else {
                md += "Not measured.\n\n"
                continue
            }
            var header = "| Job | IOPS | MB/s | p50 µs | p90 µs | p99 µs | p99.9 µs | Spread (IOPS) |"
            var align = "|---|---:|---:|---:|---:|---:|---:|---:|"
            let vireo = system == .vireo
            if vireo {
                header += " CPU µs/IO initiator | CPU µs/IO target | syscalls/IO initiator | syscalls/IO target |"
                    + " wake-ups/IO initiator | wake-ups/IO target | IOPS vs NVMe-oF |"
                align += "---:|---:|---:|---:|---:|---:|---:|"
            }
            md += header + "\n" + align + "\n"
            for job in jobs {
                let iops = results.block(system, job) { $0.iops }
                var row = "| \(Self.cell(job)) | \(Self.median(iops)) | "
                    + "\(Self.median(results.block(system, job) { $0.megabytesPerSecond })) |"
                for p in FioResult.reportedPercentiles {
                    row += " \(Self.median(results.block(system, job) { $0.latencyUs[p] })) |"
                }
                row += " \(ReportFormat.spread(iops)) |"
                if vireo {
                    for role in ["initiator", "target"] {
                        row += " \(Self.median(results.block(system, job) { $0.cpuUsPerIO[role] })) |"
                    }
                    for role in ["initiator", "target"] {
                        row += " \(Self.median(results.block(system, job) { $0.syscallsPerIO[role] })) |"
                    }
                    for role in ["initiator", "target"] {
                        row += " \(Self.median(results.block(system, job) { $0.wakeupsPerIO[role] })) |"
                    }
                    let nvmf = results.block(.nvmf, job) { $0.iops }
                    if let v = iops?.median, let n = nvmf?.median, n > 0 {
                        row += " \(ReportFormat.ratio(v / n)) |"
                    } else {
                        row += " n/a |"
                    }
                }
                md += row + "\n"
            }
            md += "\n"
        }
        return md
    }

    /// Vireo's rbd export against fio's rbd engine (librbd, no fabric) and kernel NVMe-oF over
    /// krbd, on the same image in the same boot.
    private func rbdSection() -> String {
        var md = "## Ceph RBD (one-OSD memstore cluster in the lab)\n\n"
        let jobs = Array(Set(ReportSystem.allCases.filter(\.isRBD).flatMap { results.jobs($0) })).sorted()
        guard !jobs.isEmpty else { return md + "Not measured.\n\n" }
        md += "| Job | vireo rbd export IOPS | fio rbd engine IOPS | NVMe-oF on krbd IOPS | vireo / fio rbd | vireo / NVMe-oF krbd |\n"
        md += "|---|---:|---:|---:|---:|---:|\n"
        for job in jobs {
            let v = results.block(.vireoRBD, job) { $0.iops }?.median
            let f = results.block(.rbdFio, job) { $0.iops }?.median
            let k = results.block(.rbdNvmf, job) { $0.iops }?.median
            if v == nil && f == nil && k == nil { continue }
            func ratio(_ a: Double?, _ b: Double?) -> String {
                guard let a, let b, b > 0 else { return "n/a" }
                return ReportFormat.ratio(a / b)
            }
            md += "| \(Self.cell(job)) | \(v.map { ReportFormat.number($0) } ?? "n/a") | \(f.map { ReportFormat.number($0) } ?? "n/a") | "
                + "\(k.map { ReportFormat.number($0) } ?? "n/a") | \(ratio(v, f)) | \(ratio(v, k)) |\n"
        }
        return md + "\n"
    }

    private func netSection() -> String {
        var md = "## Network (vireo-net, two ports through the target)\n\n"
        let sizes = results.netFrameSizes
        guard !sizes.isEmpty else { return md + "Not measured.\n\n" }
        let roles = Set(results.rounds.flatMap { $0.net.values.flatMap { $0.cpuUsPerFrame?.keys.map { $0 } ?? [] } })
            .sorted()
        md += "| Frame | Frames/s | Gbit/s | MB/s | Loss | Spread (frames/s) |"
            + roles.map { " CPU µs/frame \(Self.cell($0)) |" }.joined() + "\n"
        md += "|---:|---:|---:|---:|---:|---:|" + String(repeating: "---:|", count: roles.count) + "\n"
        for size in sizes {
            let fps = results.net(size) { $0.framesPerSecond }
            var row = "| \(size) B | \(Self.median(fps)) | \(Self.median(results.net(size) { $0.gigabitsPerSecond })) | "
                + "\(Self.median(results.net(size) { $0.megabytesPerSecond })) | "
            if let loss = results.net(size, { $0.loss }) {
                row += "\(ReportFormat.percent(loss.median)) |"
            } else {
                row += "n/a |"
            }
            row += " \(ReportFormat.spread(fps)) |"
            for role in roles { row += " \(Self.median(results.net(size) { $0.cpuUsPerFrame?[role] })) |" }
            md += row + "\n"
        }
        md += "\nFrame sizes are Ethernet frames without the virtio-net header; Gbit/s counts received frame bytes.\n\n"
        return md
    }

    private func metaSection() -> String {
        var md = "## Run facts\n\n"
        if results.meta.isEmpty {
            md += "No meta.txt.\n\n"
        } else {
            md += "| Key | Value |\n|---|---|\n"
            for (key, value) in results.meta { md += "| \(Self.cell(key)) | \(Self.cell(value)) |\n" }
            md += "\n"
        }
        let problems = results.problems
        if !problems.isEmpty {
            md += "### Skipped files\n\n"
            md += "Missing files mean a measurement failed in that round; these were present but unusable:\n\n"
            for problem in problems.prefix(200) { md += "- \(Self.cell(problem))\n" }
            if problems.count > 200 { md += "- … and \(problems.count - 200) more\n" }
            md += "\n"
        }
        return md
    }

    /// "ib_send_lat-4096" → ("ib_send_lat", 4096).
    static func splitPerftestName(_ name: String) -> (String, Int)? {
        guard let dash = name.lastIndex(of: "-"), let bytes = Int(name[name.index(after: dash)...]) else { return nil }
        return (String(name[..<dash]), bytes)
    }

    /// The median, or n/a.
    static func median(_ stats: RoundStats?) -> String { ReportFormat.number(stats?.median) }

    /// Text made safe for a markdown table cell (one line, no `|`).
    static func cell(_ text: String) -> String {
        var out = ""
        for c in text {
            switch c {
            case "|": out += "\\|"
            case "\n", "\r": out += " "
            case "<": out += "&lt;"
            default: out.append(c)
            }
        }
        return out
    }
}
