import VireoAuth
import VireoDaemon
import Logging
import VhostUser
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// `vireo-initiator serve`: one vhost-user server per remote disk (`RemoteBlockDevice`)
/// and remote NIC (`RemoteNetDevice`), from the configuration at start and from the
/// control API afterwards (`addDisk`, `removeDisk`, ...). Every device connects to its
/// target before its socket is served, so a bad target, export or network fails that
/// device with its reason, and adding or removing one never touches the others.
public final class InitiatorService: @unchecked Sendable {
    // SAFETY (Sendable): the device lists are in `registry` (a `Locked`); changes are
    // serialized by `changes`; the rest is immutable.

    /// A served device, its socket's server, and its stable stats label (`d0`, `n3`).
    public struct Served<Device: AnyObject & Sendable>: @unchecked Sendable {
        // SAFETY: every member is Sendable except `VhostUserServer`'s class reference, which is.
        public let id: String
        public let device: Device
        public let server: VhostUserServer
        /// Deleted with `force` while a VMM was attached: the device fails its I/O (a disk
        /// completes every request with IOERR, a NIC reports its link down) and is removed
        /// once the VMM lets go of its socket.
        public internal(set) var detached = false
        /// Whether a VMM is connected to the socket now.
        public var vmmAttached: Bool { server.session != nil }
    }

    struct Registry {
        var disks: [Served<RemoteBlockDevice>] = []
        var nics: [Served<RemoteNetDevice>] = []
        var nextDisk = 0, nextNic = 0
        var stopped = false
    }

    /// What a delete did.
    public enum Removal: Equatable, Sendable {
        /// Stopped and gone: its socket path is free.
        case removed
        /// A VMM is attached and `force` was given (or an earlier delete was): its I/O fails
        /// from now on; the device goes once the VMM lets go (QMP `device_del`).
        case detached
        /// A VMM is attached and `force` was not given: nothing changed.
        case refusedAttached
        /// No such device.
        case notFound
    }

    /// The startup configuration (host identity, stats, metrics, control socket) and
    /// the devices it named.
    public let startup: ServeConfig
    let options: VhostUserOptions
    let logger: Logger
    private let registry = Locked(Registry())
    private let changes = Locked(())

    /// Connects every disk and starts serving its socket.
    public convenience init(disks configs: [DiskConfig], options: VhostUserOptions = VhostUserOptions(),
                            logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        do throws(ConfigError) { try DiskConfig.checkUnique(configs) } catch { throw .config(error) }
        try self.init(ServeConfig(disks: configs), options: options, logger: logger)
    }

    /// Connects every disk and NIC of `config`, then serves their sockets; if one fails,
    /// none is served.
    public init(_ config: ServeConfig, options: VhostUserOptions = VhostUserOptions(),
                logger: Logger = Logger(label: "vireo.initiator")) throws(InitiatorError) {
        self.startup = config
        self.options = options
        self.logger = logger
        do throws(ConfigError) { try config.checkUnique() } catch { throw .config(error) }
        do throws(InitiatorError) {
            for c in config.disks { _ = try addDisk(c) }
            for c in config.nics { _ = try addNic(c) }
        } catch {
            stop()
            throw error
        }
    }

    /// The disks served now (detached ones included until their VMM lets go).
    public var disks: [Served<RemoteBlockDevice>] { registry.withLock { $0.disks } }
    /// The NICs served now.
    public var nics: [Served<RemoteNetDevice>] { registry.withLock { $0.nics } }

    /// The device (disk or NIC) serving `socket`, if any: its kind and label.
    public func user(ofSocket socket: String) -> String? {
        registry.withLock { r in
            if let d = r.disks.first(where: { $0.device.config.socket == socket }) { return "disk \(d.id)" }
            if let n = r.nics.first(where: { $0.device.config.socket == socket }) { return "nic \(n.id)" }
            return nil
        }
    }

    /// Connects `config`'s disk and serves its socket. The socket must not be served already.
    public func addDisk(_ config: DiskConfig) throws(InitiatorError) -> Served<RemoteBlockDevice> {
        try add(\.disks, next: \.nextDisk, id: "d", socket: config.socket, trust: config.targetTrust,
                what: "disk", serving: "export \(config.export) on \(config.target)") { c throws(InitiatorError) in
            try RemoteBlockDevice(config: config, credentials: c, logger: logger)
        }
    }

    /// Connects `config`'s NIC and serves its socket. The socket and the MAC must not be in use already.
    public func addNic(_ config: NicConfig) throws(InitiatorError) -> Served<RemoteNetDevice> {
        try add(\.nics, next: \.nextNic, id: "n", socket: config.socket, trust: config.targetTrust,
                what: "nic", serving: "network \(config.network) on \(config.target), mac \(config.mac)") { c throws(InitiatorError) in
            if let other = nics.first(where: { $0.device.config.mac == config.mac }) {
                throw .config(ConfigError(problems: ["mac \(config.mac) is used by nic \(other.id) (\(other.device.config.socket))"]))
            }
            return try RemoteNetDevice(config: config, credentials: c, logger: logger)
        }
    }

    /// Under `changes`: the socket checked free, the device checked and connected by `make`, its socket
    /// served, the device listed with the next id of its kind.
    private func add<D: ConfigChangeSource>(_ list: WritableKeyPath<Registry, [Served<D>]>, next: WritableKeyPath<Registry, Int>,
                                            id prefix: String, socket: String, trust: TargetTrust, what: String, serving: String,
                                            make: (CredentialSource) throws(InitiatorError) -> D) throws(InitiatorError) -> Served<D> {
        try changes.withLock { _ throws(InitiatorError) in
            try checkFree(socket)
            let device = try make(try credentials(trust))
            let server = try serve(device, socket: socket, what: what)
            let s = registry.withLock { r in
                defer { r[keyPath: next] += 1 }
                let s = Served(id: "\(prefix)\(r[keyPath: next])", device: device, server: server)
                r[keyPath: list].append(s)
                return s
            }
            logger.info("\(what) \(socket): serving vhost-user (\(serving))")
            return s
        }
    }

    /// Removes the disk serving `socket`. With no VMM attached it stops at once. With one
    /// attached it is refused unless `force`: then the disk is detached (every held,
    /// in-flight and later request fails with IOERR once the RNIC can no longer touch its
    /// buffers) and removed when the VMM lets go.
    public func removeDisk(socket: String, force: Bool) -> Removal {
        remove(\.disks, socket: socket, force: force, what: "disk", detached: "its I/O fails from now on")
    }

    /// Removes the NIC serving `socket`, as `removeDisk` does; a detached NIC reports its
    /// link down and drops what the guest sends.
    public func removeNic(socket: String, force: Bool) -> Removal {
        remove(\.nics, socket: socket, force: force, what: "nic", detached: "its link is down from now on")
    }

    private func remove<D: ConfigChangeSource>(_ list: WritableKeyPath<Registry, [Served<D>]>, socket: String, force: Bool,
                                               what: String, detached effect: String) -> Removal {
        changes.withLock { _ in
            reapDetached()
            guard let s = registry.withLock({ $0[keyPath: list].first { $0.device.socketPath == socket } }) else { return .notFound }
            if s.detached { return .detached }
            if s.vmmAttached {
                guard force else { return .refusedAttached }
                s.device.detach()
                registry.withLock { r in
                    if let i = r[keyPath: list].firstIndex(where: { $0.id == s.id }) { r[keyPath: list][i].detached = true }
                }
                logger.notice("\(what) \(socket) (\(s.id)): deleted with force while a VMM is attached: \(effect); removed when the VMM lets go")
                return .detached
            }
            s.server.stop()
            s.device.stop()
            Self.removeRestartRecord(of: s.device)
            registry.withLock { r in r[keyPath: list].removeAll { $0.id == s.id } }
            logger.notice("\(what) \(socket) (\(s.id)): deleted")
            return .removed
        }
    }

    /// Removes detached devices whose VMM has let go of their socket.
    public func reapDetached() {
        let gone = registry.withLock { r -> (disks: [Served<RemoteBlockDevice>], nics: [Served<RemoteNetDevice>]) in
            let d = r.disks.filter { $0.detached && !$0.vmmAttached }
            let n = r.nics.filter { $0.detached && !$0.vmmAttached }
            r.disks.removeAll { x in d.contains { $0.id == x.id } }
            r.nics.removeAll { x in n.contains { $0.id == x.id } }
            return (d, n)
        }
        for s in gone.disks { finishDetached(s, what: "disk") }
        for s in gone.nics { finishDetached(s, what: "nic") }
    }

    private func finishDetached<D: ConfigChangeSource>(_ s: Served<D>, what: String) {
        s.server.stop()
        s.device.stop()
        Self.removeRestartRecord(of: s.device)
        logger.notice("\(what) \(s.device.socketPath) (\(s.id)): its VMM let go; removed")
    }

    /// A deleted device's restart record goes with it (a restart of the
    /// initiator keeps it: the VMM still runs the device).
    private static func removeRestartRecord(of device: some VhostUserDevice) {
        if let path = device.restartRecordPath { unlink(path) }
    }

    /// The configuration the daemon runs now: the startup settings with the devices served
    /// now (detached ones left out), in the order they were added.
    public var runningConfig: ServeConfig {
        var c = startup
        registry.withLock { r in
            c.disks = r.disks.filter { !$0.detached }.map(\.device.config)
            c.nics = r.nics.filter { !$0.detached }.map(\.device.config)
        }
        return c
    }

    /// Stops every server (front-ends are disconnected), then the fabric side. The device
    /// lists stay (their counters are the stats file's last write).
    public func stop() {
        changes.withLock { _ in
            let (disks, nics) = registry.withLock { r in
                r.stopped = true
                return (r.disks, r.nics)
            }
            for d in disks { d.server.stop() }
            for n in nics { n.server.stop() }
            for d in disks { d.device.stop() }
            for n in nics { n.device.stop() }
        }
    }

    // MARK: Helpers (under `changes`)

    private func checkFree(_ socket: String) throws(InitiatorError) {
        if registry.withLock({ $0.stopped }) { throw .config(ConfigError(problems: ["the initiator is stopping"])) }
        if let user = user(ofSocket: socket) {
            throw .config(ConfigError(problems: ["socket \(socket) is served by \(user)"]))
        }
    }

    private func credentials(_ t: TargetTrust) throws(InitiatorError) -> CredentialSource {
        do { return try startup.credentials(for: t) } catch { throw .config(error) }
    }

    /// Starts `device`'s vhost-user server on `socket`, CONFIG_CHANGE wired; on failure the
    /// device is stopped.
    private func serve(_ device: some ConfigChangeSource, socket: String, what: String) throws(InitiatorError) -> VhostUserServer {
        do throws(SystemError) {
            let server = try VhostUserServer(path: socket, device: device, options: options, logger: logger)
            let logger = logger
            device.onConfigChange { [weak server] in
                do { _ = try server?.notifyConfigChange() } catch {
                    logger.warning("\(what) \(socket): CONFIG_CHANGE not delivered: \(error)")
                }
            }
            do throws(SystemError) { try server.start() } catch {
                server.stop()
                throw error
            }
            return server
        } catch {
            device.stop()
            throw .system("vhost-user socket \(socket)", error)
        }
    }
}

/// A remote device as the service serves it: a vhost-user device that reports config
/// changes and stops its fabric side.
protocol ConfigChangeSource: VhostUserDevice, AnyObject, Sendable {
    var socketPath: String { get }
    func onConfigChange(_ handler: @escaping @Sendable () -> Void)
    /// Fails the device's I/O from now on (a delete with force); see `removeDisk`.
    func detach()
    func stop()
}

extension RemoteBlockDevice: ConfigChangeSource {
    var socketPath: String { config.socket }
}

extension RemoteNetDevice: ConfigChangeSource {
    var socketPath: String { config.socket }
}
