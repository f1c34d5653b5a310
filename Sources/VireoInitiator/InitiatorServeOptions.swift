import VhostUser
import VireoDaemon

/// What `vireo-initiator serve`'s command line says, before it is merged with
/// the configuration file. The executable fills it from its options;
/// `resolve()` does everything else.
public struct InitiatorServeOptions: Sendable {
    /// `--disk` values (`socket=...,target=...,export=...`).
    public var disks: [String] = []
    /// `--nic` values (`socket=...,target=...,network=...,mac=...`).
    public var nics: [String] = []
    /// TOML file with `[[disk]]` and `[[nic]]` tables.
    public var configFile: String?
    /// Socket file mode, octal text (e.g. "660").
    public var socketMode: String?
    public var busyPoll = false
    public var statsFile: String?
    public var statsIntervalSeconds: Double?
    /// `--metrics-listen`, over the file's `metrics_listen`.
    public var metricsListen: String?
    public var spinIterations: Int?
    public var spinMicroseconds: Int?
    /// `--host-name`, `--host-key-file` (over the file's `host_name`, `host_key_file`).
    public var hostName: String?
    public var hostKeyFile: String?
    /// `--control-socket`, over the file's `control_socket`.
    public var controlSocket: String?
    /// `--test-unlogged-device-writes` (hidden): see `VhostUserOptions.logsDeviceWrites`.
    public var testUnloggedDeviceWrites = false

    public init() {}

    /// The devices to serve (flags, then the file's) and the vhost-user options;
    /// every problem of the whole lot, one line each.
    public func resolve() throws(ConfigError) -> (ServeConfig, VhostUserOptions) {
        var serve = ServeConfig()
        var problems: [String] = []
        for d in disks {
            do { serve.disks.append(try DiskConfig.parse(diskOption: d)) } catch { problems += error.problems }
        }
        for n in nics {
            do { serve.nics.append(try NicConfig.parse(nicOption: n)) } catch { problems += error.problems }
        }
        if let configFile {
            do {
                let file = try ServeConfig.parse(toml: try ConfigFile.read(configFile), source: configFile)
                serve.disks += file.disks
                serve.nics += file.nics
                serve.statsFile = file.statsFile
                serve.statsIntervalSeconds = file.statsIntervalSeconds
                serve.metricsListen = file.metricsListen
                serve.hostName = file.hostName
                serve.hostKeyFile = file.hostKeyFile
                serve.controlSocket = file.controlSocket
                serve.controlSocketMode = file.controlSocketMode
            } catch { problems += error.problems }
        }
        if let statsFile { serve.statsFile = statsFile }
        if let metricsListen {
            if MetricsServer.isValidAddress(metricsListen) { serve.metricsListen = metricsListen } else {
                problems.append("--metrics-listen '\(metricsListen)' must be a numeric address and port, e.g. 127.0.0.1:9465")
            }
        }
        if let hostName { serve.hostName = hostName }
        if let hostKeyFile { serve.hostKeyFile = hostKeyFile }
        if let controlSocket { serve.controlSocket = controlSocket }
        if let statsIntervalSeconds {
            if statsIntervalSeconds > 0 { serve.statsIntervalSeconds = statsIntervalSeconds } else {
                problems.append("--stats-interval must be positive")
            }
        }
        var options = VhostUserOptions()
        if let socketMode {
            if let mode = UInt32(socketMode, radix: 8) { options.socketMode = mode } else {
                problems.append("--socket-mode takes octal, e.g. 660")
            }
        }
        options.polling.busyPoll = busyPoll
        options.logsDeviceWrites = !testUnloggedDeviceWrites
        if let spinIterations {
            if spinIterations >= 0 { options.polling.spinIterations = spinIterations } else {
                problems.append("--spin-iterations must be ≥ 0")
            }
        }
        if let spinMicroseconds {
            if spinMicroseconds >= 0 { options.polling.spinNanoseconds = UInt64(spinMicroseconds) * 1000 } else {
                problems.append("--spin-us must be ≥ 0")
            }
        }
        if problems.isEmpty {
            do { try serve.checkUnique() } catch { problems += error.problems }
        }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return (serve, options)
    }
}
