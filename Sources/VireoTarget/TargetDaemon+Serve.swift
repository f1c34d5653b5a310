import Logging
import VireoSys
#if canImport(Glibc)
import Glibc
#endif
import VireoDaemon

extension TargetDaemon {
    /// `vireo-target serve`: starts a daemon for `config`, writes its stats file (every
    /// interval, on SIGUSR1 and at exit) and runs until SIGINT or SIGTERM, then stops it.
    /// On SIGHUP it calls `reread` (the configuration file read again, with the command
    /// line's flags) and applies the difference (`reload(to:)`); a file with problems
    /// changes nothing.
    public static func serve(_ config: TargetConfig, logger: Logger,
                             reread: (() throws(ConfigError) -> TargetConfig)? = nil) throws(TargetError) {
        TerminationSignal.block()
        let daemon = try TargetDaemon(config: config, logger: logger)
        try daemon.start()
        let control: ControlServer?, metrics: MetricsServer?
        do {
            control = try config.controlSocket.map { path throws(SystemError) in
                let c = try ControlServer(path: path, mode: mode_t(config.controlSocketMode),
                                          methods: daemon.controlMethods(), logger: logger)
                try c.start()
                return c
            }
        } catch {
            daemon.stop()
            throw .system(error)
        }
        do {
            metrics = try MetricsServer.started(at: config.metricsListen, logger: logger) { daemon.statsSnapshot() }
        } catch {
            control?.stop()
            daemon.stop()
            throw .config(error)
        }
        // Started in this order: endpoints, control socket, metrics; stopped in reverse.
        var parts = [DaemonPart("endpoints") { daemon.stop() }]
        if let control { parts.append(DaemonPart("control socket") { control.stop() }) }
        if let metrics { parts.append(DaemonPart("metrics") { metrics.stop() }) }
        DaemonLifecycle.run(
            parts, stats: config.statsFile.map { StatsFile(path: $0) }, intervalSeconds: config.statsIntervalSeconds ?? 10,
            logger: logger, collect: { daemon.statsSnapshot() }, healthy: { daemon.isHealthy },
            reload: reread.map { ConfigReload.handler(logger: logger, reread: $0, apply: { new in daemon.reload(to: new) }) })
    }
}
