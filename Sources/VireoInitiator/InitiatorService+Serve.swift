import Logging
import VhostUser
import VireoDaemon

extension InitiatorService {
    /// `vireo-initiator serve`: connects and serves every device of `config`, writes the
    /// stats file (every interval, on SIGUSR1 and at exit) and runs until SIGINT or SIGTERM,
    /// then stops them.
    public static func serve(_ config: ServeConfig, options: VhostUserOptions, logger: Logger) throws(InitiatorError) {
        TerminationSignal.block()
        let service = try InitiatorService(config, options: options, logger: logger)
        let disks = service.disks.map(\.device), nics = service.nics.map(\.device)
        let servers = service.disks.map(\.server) + service.nics.map(\.server)
        let metrics: MetricsServer?
        do {
            metrics = try MetricsServer.started(at: config.metricsListen, logger: logger) {
                InitiatorService.statsSnapshot(disks: disks, nics: nics, servers: servers)
            }
        } catch {
            service.stop()
            throw .config(error)
        }
        TerminationSignal.wait(
            stats: config.statsFile.map { StatsFile(path: $0) }, intervalSeconds: config.statsIntervalSeconds ?? 10,
            logger: logger,
            collect: { InitiatorService.statsSnapshot(disks: disks, nics: nics, servers: servers) },
            stop: { sig in
                logger.info("signal \(sig): stopping")
                metrics?.stop()
                service.stop()
            })
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
