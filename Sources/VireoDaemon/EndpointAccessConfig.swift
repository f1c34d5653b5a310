/// Which hosts may open one endpoint (an export or a network), as configured:
/// `allowed_hosts = ["host-a", "host-b"]` and/or `allow_any_host = true`.
/// The target daemon turns it into the handshake's policy: with hosts
/// configured, an endpoint that names none and does not allow any host is
/// closed to everyone (default deny).
public struct EndpointAccessConfig: Equatable, Sendable {
    /// Host names (each a configured `[[host]]`), nil: not set.
    public var allowedHosts: [String]?
    /// Any host may connect (nil: not set). A host the target has a secret for still proves itself.
    public var allowAnyHost: Bool?

    public init(allowedHosts: [String]? = nil, allowAnyHost: Bool? = nil) {
        self.allowedHosts = allowedHosts
        self.allowAnyHost = allowAnyHost
    }

    /// Reads `allowed_hosts` and `allow_any_host` (flags: `allowed-hosts=a+b`, `allow-any-host=true`).
    public init(reading r: some ConfigReader) {
        allowedHosts = r.list("allowed_hosts")
        allowAnyHost = r.bool("allow_any_host")
    }

    /// Whether the endpoint says who may connect.
    public var isSet: Bool { allowedHosts != nil || allowAnyHost != nil }
}
