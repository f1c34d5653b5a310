import Logging
import VireoFabric
import VireoSys

/// What a remote device (disk or NIC) sets up the same way, once per device:
/// one connection per queue through its connector (queue 0 first: its grant is
/// the one the device reports), the link between each queue's worker and the
/// supervisor, and then the supervisor that watches those connections and
/// remakes lost ones. The device builds its queue engines from `initial` and
/// `links` in between.
struct FabricQueues<Connector: EndpointConnector>: @unchecked Sendable {
    // SAFETY: built and used by the control thread that creates the device.
    let connector: Connector
    /// Each queue's first connection and what the target granted it.
    let initial: [(link: any FabricLink, grant: Connector.Grant)]
    let links: [QueueLink<Connector.Grant>]
    private let wake: EventBox

    /// Connects `queues` queues; `initialCredits` is what each announces (NICs).
    init(connector: Connector, queues: Int, initialCredits: Int) throws(InitiatorError) {
        self.connector = connector
        var initial: [(link: any FabricLink, grant: Connector.Grant)] = []
        // Queue 0's connection makes the device's own PD; every other queue (and every
        // reconnect) is built in it, and the device registers its guest memory there.
        for q in 0..<queues {
            let (link, grant) = try connector.connect(queue: q, cq: nil, pd: initial.first?.link.registrar,
                                                      initialCredits: initialCredits, timeoutMilliseconds: 5000)
            initial.append((link, grant))
        }
        self.initial = initial
        var links: [QueueLink<Connector.Grant>] = []
        do throws(SystemError) {
            wake = try EventBox()
            for _ in 0..<queues { links.append(try QueueLink(supervisorWake: wake)) }
        } catch { throw .system("eventfd", error) }
        self.links = links
    }

    /// The grant the device reports (queue 0's).
    var firstGrant: Connector.Grant { initial[0].grant }
    /// The device's protection domain: where it registers guest memory (every queue's
    /// connection is built in it; no other device's is).
    var registrar: any MemoryRegistrar { initial[0].link.registrar }

    /// Starts the supervisor thread over the queues' completion sources (each queue keeps
    /// its CQ across reconnects); returns what stops it.
    func startSupervisor(cqs: [any CompletionSource], name: String, logger: Logger,
                         onGeometry: @escaping @Sendable (Connector.Grant, Int) -> Void)
        throws(InitiatorError) -> @Sendable () -> Void {
        let sup = FabricSupervisor(connector: connector, links: links, cqs: cqs, pd: registrar, initial: initial.map(\.link),
                                   wake: wake, logger: logger, onGeometry: onGeometry)
        do throws(SystemError) { try sup.start(name: name) } catch { throw .system("pthread_create (fabric supervisor)", error) }
        return { sup.stop() }
    }
}
