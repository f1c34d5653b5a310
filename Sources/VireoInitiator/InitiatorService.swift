import Logging
import VhostUser
import VireoSys

/// `vireo-initiator serve`: one `RemoteBlockDevice` and vhost-user server per
/// configured disk. Every disk connects to its target before any socket is
/// served, so a bad target or export fails the start with its reason.
public final class InitiatorService {
    public private(set) var disks: [(device: RemoteBlockDevice, server: VhostUserServer)] = []
    let logger: Logger

    /// Connects every disk and starts serving its socket.
    public init(disks configs: [DiskConfig], options: VhostUserOptions = VhostUserOptions(),
                logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        self.logger = logger
        do throws(ConfigError) { try DiskConfig.checkUnique(configs) } catch { throw .config(error) }
        var devices: [RemoteBlockDevice] = []
        do throws(InitiatorError) {
            for c in configs { devices.append(try RemoteBlockDevice(config: c, logger: logger)) }
        } catch {
            for d in devices { d.stop() }
            throw error
        }
        for d in devices {
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
                stop()
                for x in devices where !disks.contains(where: { $0.device === x }) { x.stop() }
                throw .system("vhost-user socket \(d.config.socket)", error)
            }
        }
    }

    /// Stops every server (front-ends are disconnected), then the fabric side.
    public func stop() {
        for d in disks { d.server.stop() }
        for d in disks { d.device.stop() }
        disks = []
    }
}
