import Logging
import VireoFabric
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// Keeps a multi-path disk's standby paths known: every `interval` it probes each path
/// that does not carry I/O (`TargetConnector.probe`: a connect request the gateway checks
/// as it would a queue's and answers with a reject, allocating nothing and logging nothing
/// above debug), and records the answer in `DiskPaths`, which a failover consults. One
/// thread per disk with more than one path; a probe blocks only this thread, never the
/// supervisor that moves queues.
final class PathProber: @unchecked Sendable {

    /// Time between rounds of probes.
    static var intervalNanoseconds: UInt64 { 2_000_000_000 }
    /// One probe's budget (rdma_cm steps).
    static var probeTimeoutMilliseconds: Int32 { 1000 }

    private let connector: TargetConnector
    private let logger: Logger
    private let what: String
    private let control: ControlThread

    init(connector: TargetConnector, what: String, logger: Logger) throws(SystemError) {
        self.connector = connector
        self.what = what
        self.logger = logger
        control = ControlThread(wake: try EventBox())
    }

    func start(name: String) throws(SystemError) {
        try control.start(name: name) { [self] in run() }
    }

    /// Stops and joins the thread (a probe under way finishes first: a few seconds at most
    /// when its gateway does not answer).
    func stop() { control.stop() }

    /// Probes every path but the active one once, recording each answer.
    func round() {
        let paths = connector.paths
        for index in paths.addresses.indices where index != paths.active {
            if control.isStopping { return }
            let error = connector.probe(path: index, timeoutMilliseconds: Self.probeTimeoutMilliseconds)
            guard let before = paths.probed(index, error: error) else { continue }
            let address = paths.addresses[index]
            if let error {
                logger.warning("\(what): standby path \(address) failed its probe: \(error)")
            } else {
                logger.notice("\(what): standby path \(address) answers its probe (was \(before.rawValue))")
            }
        }
    }

    private func run() {
        while !control.isStopping {
            round()
            var fd = pollfd(fd: control.wake.fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, Int32(Self.intervalNanoseconds / 1_000_000))
            control.wake.drainIfSignalled()
        }
    }
}
