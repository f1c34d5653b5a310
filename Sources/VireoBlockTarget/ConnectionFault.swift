/// Why the target dropped a block connection on an error (counted by reason;
/// an orderly disconnect has none).
public enum ConnectionFault: Int, CaseIterable, Sendable {
    /// A capsule too short to carry a tag: nothing to answer, the peer is broken.
    case badCapsule = 0
    /// The RDMA READ of the initiator's buffers (a WRITE's data) failed: bad rkey, address or length.
    case transferFailed
    /// The RDMA WRITE into the initiator's buffers (a READ's data) failed.
    case dataWriteFailed
    /// Our work requests were never acknowledged (transport or RNR retries exceeded, or nothing
    /// completed within the peer timeout, see `PeerLiveness`): the peer vanished.
    case peerUnreachable
    /// The response SEND failed otherwise.
    case responseFailed
    /// A receive failed (a SEND longer than the receive buffer, ...).
    case receiveFailed
    /// A completion for a slot the connection does not have.
    case protocolError
    /// Posting work requests failed (the QP is in error).
    case postFailed
    /// The worker had no free queue slot.
    case noQueueSlot
    /// The target is stopping.
    case stopping
    /// The handshake failed: no hello, a malformed one, or a message before it.
    case handshakeFailed
    /// The handshake refused the host (unknown, wrong secret, not allowed).
    case authenticationRefused
    /// No hello within the handshake deadline.
    case handshakeTimeout
    /// More commands in flight than the granted queue depth (on a worker's shared receive
    /// pool, they would take buffers its other connections need).
    case creditExceeded

    /// The name in counters and logs.
    public var name: String {
        switch self {
        case .badCapsule: return "badCapsule"
        case .transferFailed: return "transferFailed"
        case .dataWriteFailed: return "dataWriteFailed"
        case .peerUnreachable: return "peerUnreachable"
        case .responseFailed: return "responseFailed"
        case .receiveFailed: return "receiveFailed"
        case .protocolError: return "protocolError"
        case .postFailed: return "postFailed"
        case .noQueueSlot: return "noQueueSlot"
        case .stopping: return "stopping"
        case .handshakeFailed: return "handshakeFailed"
        case .authenticationRefused: return "authenticationRefused"
        case .handshakeTimeout: return "handshakeTimeout"
        case .creditExceeded: return "creditExceeded"
        }
    }
}
