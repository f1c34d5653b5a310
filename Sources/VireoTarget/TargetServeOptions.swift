import VireoBlockTarget
import VireoDaemon
import VireoPacketTarget

/// What `vireo-target serve`'s command line says, before it is merged with the
/// configuration file. The executable fills it from its options; `resolve()`
/// does everything else.
public struct TargetServeOptions: Sendable {
    /// TOML configuration file.
    public var configFile: String?
    public var listen: String?
    public var workers: Int?
    public var busyPoll = false
    /// `--export` values (`name=vol0,file=...`).
    public var exports: [String] = []
    /// `--network` values (`name=lan0,...`).
    public var networks: [String] = []
    public var statsFile: String?
    /// `--metrics-listen`, overriding the config's.
    public var metricsListen: String?
    /// `--shared-receives`, overriding the config's.
    public var sharedReceives: Int?
    /// The control API's socket path (`--control-socket`), overriding the config's.
    public var controlSocket: String?
    public var statsIntervalSeconds: Double?
    public var keepaliveSeconds: Double?
    public var peerTimeoutSeconds: Double?
    /// `--name`, `--key-file`, `--handshake-timeout`.
    public var name: String?
    public var keyFile: String?
    public var handshakeTimeoutSeconds: Double?
    /// `--host` values (`name=compute-1,key-file=...`).
    public var hosts: [String] = []

    public init() {}

    /// The configuration: the file first, then every flag over it (`--export` and `--network`
    /// add; the rest override); every problem of the whole lot, one line each.
    public func resolve() throws(ConfigError) -> TargetConfig {
        var cfg = TargetConfig()
        if let configFile {
            let text = try ConfigFile.read(configFile)
            do { cfg = try TargetConfig(toml: text) } catch {
                throw ConfigError(problems: error.problems.map { "\(configFile): \($0)" })
            }
        }
        var problems: [String] = []
        if let listen { cfg.listen = listen }
        if let workers { cfg.workers = workers }
        if busyPoll { cfg.busyPoll = true }
        if let statsFile { cfg.statsFile = statsFile }
        if let controlSocket { cfg.controlSocket = controlSocket }
        if let sharedReceives { cfg.sharedReceives = sharedReceives }
        if let metricsListen { cfg.metricsListen = metricsListen }
        if let statsIntervalSeconds {
            if statsIntervalSeconds > 0 { cfg.statsIntervalSeconds = statsIntervalSeconds } else {
                problems.append("--stats-interval must be positive")
            }
        }
        if let keepaliveSeconds { cfg.keepaliveSeconds = keepaliveSeconds }
        if let peerTimeoutSeconds { cfg.peerTimeoutSeconds = peerTimeoutSeconds }
        if let name { cfg.name = name }
        if let keyFile { cfg.keyFile = keyFile }
        if let handshakeTimeoutSeconds { cfg.handshakeTimeoutSeconds = handshakeTimeoutSeconds }
        for h in hosts {
            do { cfg.hosts.append(try HostConfig(flag: h)) } catch { problems += error.problems }
        }
        for e in exports {
            do { cfg.exports.append(try ExportConfig(flag: e)) } catch { problems += error.problems }
        }
        for n in networks {
            do { cfg.networks.append(try NetworkConfig(flag: n)) } catch { problems += error.problems }
        }
        if problems.isEmpty { problems = cfg.problems() }
        guard problems.isEmpty else { throw ConfigError(problems: problems) }
        return cfg
    }
}
