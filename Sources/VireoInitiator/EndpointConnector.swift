import VireoAuth
import VireoDaemon
import VireoFabric
import VireoWire

/// What a target's accept carries for one endpoint kind, decoded and checked
/// against the request (`BlockGeometry`, `PacketGeometry`).
protocol EndpointGrant: Sendable {
    init(decoding bytes: [UInt8], requested: ConnectRequest) throws(WireError)
}

extension BlockGeometry: EndpointGrant {}
extension PacketGeometry: EndpointGrant {}

/// Opens one queue's connection to a target endpoint and decodes what the
/// target granted (its accept data). Shared by block and packet endpoints:
/// `FabricSupervisor` reconnects through it with backoff. A kind supplies
/// the request, the queue pair's shape and the names; `connect` is written once.
protocol EndpointConnector: Sendable {
    associatedtype Grant: EndpointGrant
    /// The target's address.
    var target: FabricAddress { get }
    /// The endpoint, for messages ("export vol0", "network lan0").
    var endpointDescription: String { get }
    /// The connect request for queue `queue`; `initialCredits` is what the worker can post
    /// at once (packet endpoints announce it; block endpoints ignore it).
    func request(queue: Int, initialCredits: Int) -> ConnectRequest
    /// The queue pair's shape.
    var queuePairConfig: QueuePairConfig { get }
    /// Who this host is to the target, and what it requires of the target (the handshake),
    /// as of each connect.
    var credentials: CredentialSource { get }
    /// Connects queue `queue` (see the extension's fabric implementation, which every
    /// production connector uses; tests supply connectors over the fake verbs layer).
    func connect(queue: Int, cq: (any CompletionSource)?, pd: (any MemoryRegistrar)?, initialCredits: Int,
                 timeoutMilliseconds: Int32) throws(InitiatorError) -> (any FabricLink, Grant)
    /// Which of the endpoint's paths new connections go over (0 for a single path). The
    /// supervisor moves connections made over another path to this one.
    var activePath: Int { get }
    /// Describes path `index` ("10.99.0.2:4420").
    func pathDescription(_ index: Int) -> String
    /// How many paths the endpoint has (1 for a single target).
    var pathCount: Int { get }
}

extension EndpointConnector {
    /// The target, for messages ("10.99.0.1:4420").
    var targetDescription: String { "\(target)" }
    var activePath: Int { 0 }
    func pathDescription(_ index: Int) -> String { targetDescription }
    var pathCount: Int { 1 }

    /// Connects queue `queue`; with `cq`, the new queue pair completes into it
    /// (a queue keeps its CQ, and so its wake fd, across reconnects); with `pd`,
    /// it is built in that protection domain (a device's PD: its own, never shared
    /// with another device), else in a new one (the device's first connection). A reject
    /// carries the target's reason and message; an accept the target's grant,
    /// checked against what was asked, and the handshake's challenge, which
    /// `authenticate` answers before the connection is returned.
    func connect(queue: Int, cq: (any CompletionSource)?, pd: (any MemoryRegistrar)?, initialCredits: Int,
                 timeoutMilliseconds: Int32) throws(InitiatorError) -> (any FabricLink, Grant) {
        try connect(to: target, queue: queue, cq: cq, pd: pd, initialCredits: initialCredits,
                    timeoutMilliseconds: timeoutMilliseconds)
    }

    /// `connect` over the path to `target` (one of the endpoint's paths).
    func connect(to target: FabricAddress, queue: Int, cq: (any CompletionSource)?, pd: (any MemoryRegistrar)?,
                 initialCredits: Int, timeoutMilliseconds: Int32) throws(InitiatorError) -> (any FabricLink, Grant) {
        let targetDescription = "\(target)"
        let req = request(queue: queue, initialCredits: initialCredits)
        let data: [UInt8]
        do throws(WireError) { data = try req.encoded() } catch { throw .geometry(target: targetDescription, queue: queue, error) }
        // A queue keeps the CQ its first connection made; only a device's CQ can back a device's QP.
        let deviceCQ = cq as? CompletionQueue
        let devicePD = pd as? ProtectionDomain
        let resources = ConnectionResources(pd: devicePD, ownPD: devicePD == nil, sendCQ: deviceCQ, receiveCQ: deviceCQ,
                                            queuePair: queuePairConfig)
        let conn: Connection
        do throws(FabricError) {
            conn = try Connection.connect(to: target, resources: resources, privateData: data,
                                          timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            if case .rejected(_, let pd) = error, let reject = ConnectReject(decoding: pd) {
                throw .rejected(target: targetDescription, export: endpointDescription, queue: queue,
                                reason: reject.reason, message: reject.message)
            }
            throw .connect(target: targetDescription, queue: queue, error)
        }
        let grant: Grant
        do throws(WireError) {
            grant = try Grant(decoding: conn.peerPrivateData, requested: req)
        } catch {
            conn.disconnect(timeoutMilliseconds: 100)
            throw .geometry(target: targetDescription, queue: queue, error)
        }
        try authenticate(conn, queue: queue, request: data, accept: conn.peerPrivateData, target: targetDescription,
                         timeoutMilliseconds: timeoutMilliseconds)
        return (conn, grant)
    }

    /// `authenticate` on a connection to `target`.
    func authenticate(_ link: any FabricLink, queue: Int, request: [UInt8], accept: [UInt8], timeoutMilliseconds: Int32)
        throws(InitiatorError) {
        try authenticate(link, queue: queue, request: request, accept: accept, target: targetDescription,
                         timeoutMilliseconds: timeoutMilliseconds)
    }

    /// The handshake on a connection just made (`HandshakeExchange`): on failure the
    /// connection is dropped and the error names this host and the endpoint.
    func authenticate(_ link: any FabricLink, queue: Int, request: [UInt8], accept: [UInt8], target targetDescription: String,
                      timeoutMilliseconds: Int32) throws(InitiatorError) {
        let now: InitiatorCredentials
        do throws(ConfigError) { now = try credentials.current() } catch {
            link.disconnect(timeoutMilliseconds: 100)
            throw .config(error)
        }
        do throws(HandshakeFailure) {
            let h = try InitiatorHandshake(credentials: now, request: request, accept: accept)
            try HandshakeExchange.run(h, on: link, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            link.disconnect(timeoutMilliseconds: 100)
            throw .handshake(target: targetDescription, queue: queue,
                             message: error.explained(host: credentials.hostName, endpoint: endpointDescription))
        }
    }
}
