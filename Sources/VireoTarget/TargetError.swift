import VireoBlockTarget
import VireoDaemon
import VireoFabric
import VireoSys

/// Why the target daemon could not start or serve. Each case names what failed.
public enum TargetError: Error, CustomStringConvertible, Sendable {
    /// The configuration is unusable (one line per problem).
    case config(ConfigError)
    /// An export's backing could not be opened or created.
    case export(name: String, SystemError)
    /// The fabric (listener, device, CQs) failed.
    case fabric(FabricError)
    /// A system call outside the fabric failed (eventfd, thread, io_uring).
    case system(SystemError)
    /// A network could not be set up (its TAP uplink, its worker).
    case network(name: String, SystemError)

    public var description: String {
        switch self {
        case .config(let e): return e.description
        case .export(let name, let e): return "export \(name): \(e)"
        case .fabric(let e): return e.description
        case .system(let e): return e.description
        case .network(let name, let e): return "network \(name): \(e)"
        }
    }
}
