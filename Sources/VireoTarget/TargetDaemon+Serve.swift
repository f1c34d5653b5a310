import Logging
import VireoDaemon

extension TargetDaemon {
    /// `vireo-target serve`: starts a daemon for `config`, writes its stats file (every
    /// interval, on SIGUSR1 and at exit) and runs until SIGINT or SIGTERM, then stops it.
    public static func serve(_ config: TargetConfig, logger: Logger) throws(TargetError) {
        TerminationSignal.block()
        let daemon = try TargetDaemon(config: config, logger: logger)
        try daemon.start()
        TerminationSignal.wait(
            stats: config.statsFile.map { StatsFile(path: $0) }, intervalSeconds: config.statsIntervalSeconds ?? 10,
            logger: logger, collect: { daemon.statsSnapshot() },
            stop: { sig in
                logger.info("signal \(sig): shutting down")
                daemon.stop()
            })
    }
}
