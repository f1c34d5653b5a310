import Logging
import VhostUser
import VireoDaemon
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

extension InitiatorService {
    /// `vireo-initiator serve`: connects and serves every device of `config`, writes the
    /// stats file (every interval, on SIGUSR1 and at exit) and runs until SIGINT or SIGTERM,
    /// then stops them.
    /// On SIGHUP it calls `reread` (the configuration file read again, with the command
    /// line's flags) and applies the difference (`reload(to:)`); a file with problems changes nothing.
    public static func serve(_ config: ServeConfig, options: VhostUserOptions, logger: Logger,
                             reread: (() throws(ConfigError) -> ServeConfig)? = nil) throws(InitiatorError) {
        TerminationSignal.block()
        if !options.logsDeviceWrites {
            logger.warning("TEST SWITCH: completions do not dirty-log what they write into guest memory; a VM migrated from this host may resume with stale data (--test-unlogged-device-writes)")
        }
        let service = try InitiatorService(config, options: options, logger: logger)
        let control: ControlServer?, metrics: MetricsServer?
        do throws(SystemError) {
            control = try config.controlSocket.map { path throws(SystemError) in
                let c = try ControlServer(path: path, mode: mode_t(config.controlSocketMode),
                                          methods: service.controlMethods(), logger: logger)
                try c.start()
                return c
            }
        } catch {
            service.stop()
            throw .system("control socket \(config.controlSocket ?? "")", error)
        }
        do {
            metrics = try MetricsServer.started(at: config.metricsListen, logger: logger) { service.statsSnapshot() }
        } catch {
            control?.stop()
            service.stop()
            throw .config(error)
        }
        // Started in this order: devices, control socket, metrics; stopped in reverse.
        var parts = [DaemonPart("devices") { service.stop() }]
        if let control { parts.append(DaemonPart("control socket") { control.stop() }) }
        if let metrics { parts.append(DaemonPart("metrics") { metrics.stop() }) }
        DaemonLifecycle.run(
            parts, stats: config.statsFile.map { StatsFile(path: $0) }, intervalSeconds: config.statsIntervalSeconds ?? 10,
            logger: logger, collect: { service.statsSnapshot() },
            reload: reread.map { ConfigReload.handler(logger: logger, reread: $0, apply: { new in service.reload(to: new) }) })
    }

    /// Serves one stand-in `device` (no fabric: `local-disk`, `loopback-net`) on a vhost-user
    /// socket until SIGINT or SIGTERM.
    public static func serveLocal(_ device: VhostUserDevice, socket: String, options: VhostUserOptions, what: String,
                                  logger: Logger) throws {
        TerminationSignal.block()
        let server = try VhostUserServer(path: socket, device: device, options: options, logger: logger)
        try server.start()
        logger.info("\(what) on vhost-user socket \(socket)")
        let sig = TerminationSignal.wait()
        logger.info("signal \(sig): stopping")
        server.stop()
    }
}
