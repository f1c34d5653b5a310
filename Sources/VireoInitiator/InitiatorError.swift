import VireoDaemon
import VireoFabric
import VireoSys
import VireoWire

/// Why a remote disk could not be set up. Each case names the call or step
/// that failed; a target's reject message is carried verbatim.
public enum InitiatorError: Error, CustomStringConvertible, Sendable {
    /// The target refused the connection to `export` (an export or, for a NIC,
    /// "network NAME"); `message` is its reject text, verbatim.
    case rejected(target: String, export: String, queue: Int, reason: RejectReason?, message: String)
    /// `Connection.connect` to the target failed (no listener, unreachable, timed out, ...).
    case connect(target: String, queue: Int, FabricError)
    /// The target's accept data is unusable (`BlockGeometry(decoding:requested:)`).
    case geometry(target: String, queue: Int, WireError)
    /// A verbs resource for the disk could not be made (buffer registration, CQ).
    case fabric(String, FabricError)
    /// A system call failed (eventfd, thread, vhost-user socket).
    case system(String, SystemError)
    /// The configuration is invalid.
    case config(ConfigError)
    /// The handshake on a new connection failed: the target refused this host, could not
    /// prove itself, or did not answer in time; `message` names the host and the endpoint.
    case handshake(target: String, queue: Int, message: String)

    public var description: String {
        switch self {
        case .rejected(let t, let e, let q, _, let message):
            return "target \(t) rejected \(e) (queue \(q)): \(message)"
        case .connect(let t, let q, let e): return "connect to target \(t) (queue \(q)): \(e)"
        case .geometry(let t, let q, let e): return "target \(t) (queue \(q)) sent an unusable geometry: \(e)"
        case .fabric(let what, let e): return "\(what): \(e)"
        case .system(let what, let e): return "\(what): \(e)"
        case .config(let e): return e.description
        case .handshake(let t, let q, let m): return "handshake with target \(t) (queue \(q)): \(m)"
        }
    }
}
