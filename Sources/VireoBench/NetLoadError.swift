/// Why `vireo-bench net` could not run (the message names what failed).
public enum NetLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A bad option or an option the device cannot satisfy.
    case invalid(String)
    /// The vhost-user conversation with the NIC at the socket failed.
    case vhostUser(String, String)
    /// A system call or resource failed.
    case system(String, String)
    /// Something did not happen in time (link up, the hello frame).
    case timeout(String)

    public var description: String {
        switch self {
        case .invalid(let m): m
        case .vhostUser(let socket, let m): "\(socket): \(m)"
        case .system(let what, let m): "\(what): \(m)"
        case .timeout(let m): m
        }
    }
}
