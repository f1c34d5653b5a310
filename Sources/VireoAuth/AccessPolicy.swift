import VireoWire

/// Who may use a target: its own name and secret, the hosts it knows (each
/// with its secret, or none: named but unauthenticated), and, per endpoint,
/// which of them are allowed. Built by the target daemon from its
/// configuration; read by every connection's `TargetHandshake`.
public struct AccessPolicy: Sendable {
    /// Sent in every accept and covered by both proofs.
    public let targetName: String
    /// With a secret the target proves itself to every initiator.
    public let targetKey: HandshakeKey?
    /// Configured hosts by name, each with the secrets a proof may use (two while a key is
    /// rotated); none: the host is known by name only (no proof checked).
    public let hosts: [String: [HandshakeKey]]

    public init(targetName: String, targetKey: HandshakeKey?, hosts: [String: [HandshakeKey]]) {
        self.targetName = targetName
        self.targetKey = targetKey
        self.hosts = hosts
    }

    /// Which hosts may open one endpoint (export or network).
    public struct Endpoint: Sendable, Equatable {
        /// Any host, known or not (a configured host must still prove itself).
        public var allowAnyHost: Bool
        /// Hosts allowed by name (used when `allowAnyHost` is false).
        public var allowedHosts: Set<String>

        public init(allowAnyHost: Bool, allowedHosts: Set<String> = []) {
            self.allowAnyHost = allowAnyHost
            self.allowedHosts = allowedHosts
        }
    }

    /// The decision for a decoded hello: nil when the host may use the endpoint
    /// (its proof, when it has a secret, already checked by the caller).
    func refusal(host: String, endpoint: Endpoint) -> AuthRejectReason? {
        if endpoint.allowAnyHost { return nil }
        guard hosts[host] != nil else { return .unknownHost }
        return endpoint.allowedHosts.contains(host) ? nil : .hostNotAllowed
    }
}
