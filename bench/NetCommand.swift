import ArgumentParser
import Foundation
import VireoBench
import VireoSys

/// `vireo-bench net`: options in, `NetLoad` runs, summary and JSON out.
struct NetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "net",
        abstract: "virtio-net load: frames from one NIC's socket to another's, through the target's switch.")

    @Option(help: "vhost-user socket of the sending NIC.") var txSocket: String
    @Option(help: "vhost-user socket of the receiving NIC.") var rxSocket: String
    @Option(help: "Ethernet frame length without the virtio-net header.") var frameBytes = 1500
    @Option(help: "Measured seconds.") var runtime = 10.0
    @Option(help: "Seconds of load before measuring.") var ramp = 1.0
    @Option(help: "Entries per virtqueue.") var queueSize = 256
    @Option(help: "Guest memory per NIC (e.g. 256M).") var memory = "256M"
    @Option(help: "Process whose CPU time to report, NAME=PID (repeatable).") var pid: [String] = []
    @Option(help: "Label copied into the JSON.") var label = ""
    @Option(help: ArgumentHelp("target=PATH: the target's --stats-file, for the switch's drops and copies (needs --pid target=PID).",
                               valueName: "name=path")) var stats: [String] = []
    @Option(help: "Write the JSON result to this path.") var json: String?

    func run() throws {
        var c = NetLoadConfig(txSocket: txSocket, rxSocket: rxSocket)
        c.frameBytes = frameBytes
        c.runtime = runtime
        c.ramp = ramp
        c.queueSize = queueSize
        guard let m = parseByteCount(memory) else { throw ValidationError("--memory \(memory): not a size") }
        c.memoryBytes = m
        c.pids = try pid.map { try NetLoadConfig.NamedPID.parse($0) }
        c.label = label
        for s in stats {
            let kv = s.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == "target" else { throw ValidationError("--stats takes target=PATH") }
            guard c.pids.contains(where: { $0.name == "target" }) else {
                throw ValidationError("--stats target=PATH needs --pid target=PID (to send SIGUSR1)")
            }
            c.targetStats = String(kv[1])
        }
        let result: NetLoadResult
        do {
            // Unbuffered: progress lines reach a log file as they happen.
            result = try NetLoad(config: c).run { FileHandle.standardOutput.write(Data(($0 + "\n").utf8)) }
        } catch {
            FileHandle.standardError.write(Data("vireo-bench net: \(error)\n".utf8))
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(Data((result.summary + "\n").utf8))
        if let path = json {
            try (result.json + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
    }
}
