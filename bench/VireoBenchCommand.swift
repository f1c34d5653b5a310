// vireo-bench: load generators and the benchmark report. This executable only
// parses options and runs what `VireoBench` builds.
import ArgumentParser

@main
struct VireoBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vireo-bench",
        abstract: "Vireo benchmarks: vhost-user load generators and the comparison report.",
        subcommands: [BlkCommand.self, NetCommand.self, ReportCommand.self, CheckImageCommand.self])
}
