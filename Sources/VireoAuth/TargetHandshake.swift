import VireoWire

/// One connection's handshake on the target: made by the control plane when
/// it accepts (it chose the nonce and wrote the accept), checked by the
/// connection's worker when the hello arrives (`verify`), once.
///
/// Checks, in order: the hello decodes; the host id of the connect request
/// is the named host's; a host the target has a secret for proves it
/// (HMAC over both nonces, both names, the request and the accept, compared
/// in constant time); the endpoint allows the host.
public struct TargetHandshake: Sendable {
    public let policy: AccessPolicy
    public let endpoint: AccessPolicy.Endpoint
    /// "export vol0", "network lan0": for messages.
    public let endpointDescription: String
    /// The connect request's 56 bytes and the accept's bytes, as sent.
    public let request: [UInt8]
    public let accept: [UInt8]
    /// The request's host id, when it carried one (block connections; packet
    /// connections with a port key carry the key there instead).
    public let claimedHostID: [UInt8]?
    /// A named switch port bound to hosts: only they may claim it (description, hosts).
    public let boundPort: (name: String, hosts: Set<String>)?

    public init(policy: AccessPolicy, endpoint: AccessPolicy.Endpoint, endpointDescription: String,
                request: [UInt8], accept: [UInt8], claimedHostID: [UInt8]?,
                boundPort: (name: String, hosts: Set<String>)? = nil) {
        self.boundPort = boundPort
        self.policy = policy
        self.endpoint = endpoint
        self.endpointDescription = endpointDescription
        self.request = request
        self.accept = accept
        self.claimedHostID = claimedHostID
    }

    /// Builds the accept data: the endpoint's geometry bytes, then a fresh nonce and the target's name.
    public static func accept(geometry: [UInt8], policy: AccessPolicy) -> [UInt8] {
        var a = geometry
        let auth = AcceptAuth(targetNonce: HandshakeTranscript.nonce(), targetProves: policy.targetKey != nil,
                              targetName: policy.targetName)
        // The name was validated with the configuration; the nonce has its size.
        try? auth.write(into: &a)
        return a
    }

    /// What the worker does with a hello.
    public enum Verdict: Sendable {
        /// Serve the connection; RDMA-WRITE `result` into the mailbox first.
        case accepted(host: String, result: [UInt8], mailboxAddress: UInt64, mailboxKey: UInt32)
        /// Write `result` (the reason) into the mailbox, then drop the connection; `message` is for the log.
        case rejected(AuthRejectReason, message: String, result: [UInt8], mailboxAddress: UInt64, mailboxKey: UInt32)
        /// No usable hello (no mailbox to answer in): drop the connection.
        case malformed(String)
    }

    /// Checks the `count` bytes at `p` (a receive buffer) as this connection's hello.
    public func verify(_ p: UnsafeRawPointer, count: Int) -> Verdict {
        let hello: AuthHello
        do throws(WireError) { hello = try AuthHello(decoding: p, count: count) } catch {
            return .malformed("handshake: \(error.message)")
        }
        func reject(_ r: AuthRejectReason, _ message: String) -> Verdict {
            .rejected(r, message: message, result: AuthResult(rejection: r, proof: nil).encoded(),
                      mailboxAddress: hello.mailboxAddress, mailboxKey: hello.mailboxKey)
        }
        let host = hello.hostName
        if let claimedHostID, !HandshakeTranscript.equal(claimedHostID, HandshakeTranscript.hostID(of: host)) {
            return reject(.hostMismatch, "host '\(host)': the connect request's host id is another host's")
        }
        let transcript = HandshakeTranscript(request: request, accept: accept, initiatorNonce: hello.initiatorNonce, hostName: host)
        if let keys = policy.hosts[host], !keys.isEmpty {
            guard let proof = hello.proof else {
                return reject(.authenticationFailed, "host '\(host)' sent no proof, and the target has a secret for it")
            }
            // Every key is tried (no early exit): the time does not tell which one matched.
            let matched = keys.reduce(false) { found, key in
                let m = HandshakeTranscript.equal(proof, transcript.hostProof(key))
                return found || m
            }
            guard matched else {
                return reject(.authenticationFailed, "host '\(host)': wrong proof (not the target's secret for this host, or a replayed handshake)")
            }
        }
        if let r = policy.refusal(host: host, endpoint: endpoint) {
            switch r {
            case .unknownHost: return reject(r, "host '\(host)' is not configured on this target")
            default: return reject(r, "host '\(host)' is not allowed on \(endpointDescription)")
            }
        }
        if let boundPort, !boundPort.hosts.contains(host) {
            return reject(.hostNotAllowed, "host '\(host)' may not claim port \(boundPort.name) of \(endpointDescription)")
        }
        let targetProof = policy.targetKey.map { transcript.targetProof($0, hostProof: hello.proof) }
        return .accepted(host: host, result: AuthResult(rejection: nil, proof: targetProof).encoded(),
                         mailboxAddress: hello.mailboxAddress, mailboxKey: hello.mailboxKey)
    }
}
