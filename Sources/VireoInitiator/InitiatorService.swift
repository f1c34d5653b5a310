import VireoAuth
import VireoDaemon
import Logging
import VhostUser
import VireoSys

/// `vireo-initiator serve`: one vhost-user server per configured remote disk
/// (`RemoteBlockDevice`) and remote NIC (`RemoteNetDevice`). Every device
/// connects to its target before any socket is served, so a bad target,
/// export or network fails the start with its reason.
public final class InitiatorService {
    public private(set) var disks: [(device: RemoteBlockDevice, server: VhostUserServer)] = []
    public private(set) var nics: [(device: RemoteNetDevice, server: VhostUserServer)] = []
    let logger: Logger

    /// Connects every disk and starts serving its socket.
    public convenience init(disks configs: [DiskConfig], options: VhostUserOptions = VhostUserOptions(),
                            logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        do throws(ConfigError) { try DiskConfig.checkUnique(configs) } catch { throw .config(error) }
        try self.init(ServeConfig(disks: configs), options: options, logger: logger)
    }

    /// Connects every disk and NIC, then starts serving their sockets.
    public init(_ config: ServeConfig, options: VhostUserOptions = VhostUserOptions(),
                logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        self.logger = logger
        do throws(ConfigError) { try config.checkUnique() } catch { throw .config(error) }
        var blockDevices: [RemoteBlockDevice] = []
        var netDevices: [RemoteNetDevice] = []
        do throws(InitiatorError) {
            func credentials(_ t: TargetTrust) throws(InitiatorError) -> CredentialSource {
                do { return try config.credentials(for: t) } catch { throw .config(error) }
            }
            for c in config.disks {
                blockDevices.append(try RemoteBlockDevice(config: c, credentials: credentials(c.targetTrust), logger: logger))
            }
            for c in config.nics {
                netDevices.append(try RemoteNetDevice(config: c, credentials: credentials(c.targetTrust), logger: logger))
            }
        } catch {
            for d in blockDevices { d.stop() }
            for d in netDevices { d.stop() }
            throw error
        }
        var failure: InitiatorError?
        for d in blockDevices where failure == nil {
            do throws(SystemError) {
                let server = try VhostUserServer(path: d.config.socket, device: d, options: options, logger: logger)
                d.onConfigChange { [weak server] in
                    do { _ = try server?.notifyConfigChange() } catch {
                        logger.warning("disk \(d.config.socket): CONFIG_CHANGE not delivered: \(error)")
                    }
                }
                try server.start()
                disks.append((d, server))
                logger.info("disk \(d.config.socket): serving vhost-user (export \(d.config.export) on \(d.config.target))")
            } catch {
                failure = .system("vhost-user socket \(d.config.socket)", error)
            }
        }
        for d in netDevices where failure == nil {
            do throws(SystemError) {
                let server = try VhostUserServer(path: d.config.socket, device: d, options: options, logger: logger)
                d.onConfigChange { [weak server] in
                    do { _ = try server?.notifyConfigChange() } catch {
                        logger.warning("nic \(d.config.socket): CONFIG_CHANGE not delivered: \(error)")
                    }
                }
                try server.start()
                nics.append((d, server))
                logger.info("nic \(d.config.socket): serving vhost-user (network \(d.config.network) on \(d.config.target), mac \(d.config.mac))")
            } catch {
                failure = .system("vhost-user socket \(d.config.socket)", error)
            }
        }
        if let failure {
            stop()
            for x in blockDevices where !disks.contains(where: { $0.device === x }) { x.stop() }
            for x in netDevices where !nics.contains(where: { $0.device === x }) { x.stop() }
            throw failure
        }
    }

    /// Stops every server (front-ends are disconnected), then the fabric side.
    public func stop() {
        for d in disks { d.server.stop() }
        for n in nics { n.server.stop() }
        for d in disks { d.device.stop() }
        for n in nics { n.device.stop() }
        disks = []
        nics = []
    }
}
