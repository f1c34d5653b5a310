import VireoFabric

/// Opens one queue's connection to a target endpoint and decodes what the
/// target granted (its accept data). Shared by block and packet endpoints:
/// `FabricSupervisor` reconnects through it with backoff.
protocol EndpointConnector: Sendable {
    /// What the target's accept carries (`BlockGeometry`, `PacketGeometry`).
    associatedtype Grant: Sendable
    /// The target, for messages ("10.99.0.1:4420").
    var targetDescription: String { get }
    /// Connects queue `queue`; with `cq`, the new queue pair completes into it
    /// (a queue keeps its CQ, and so its wake fd, across reconnects).
    /// `initialCredits` is what the worker can post at once (packet
    /// endpoints announce it in the connect request; block endpoints ignore it).
    func connect(queue: Int, cq: CompletionQueue?, initialCredits: Int, timeoutMilliseconds: Int32)
        throws(InitiatorError) -> (Connection, Grant)
}
