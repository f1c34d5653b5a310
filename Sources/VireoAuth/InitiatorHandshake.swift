import VireoWire

/// Who an initiator is to its targets, and what it expects of them.
public struct InitiatorCredentials: Sendable {
    /// Sent in every hello; the target's `hosts` and `allowed_hosts` name it.
    public var hostName: String
    /// The host's secret (the target's copy of it checks the proof); nil: no proof sent.
    public var hostKey: HandshakeKey?
    /// The target's secrets (two while it rotates its key): with any, the initiator requires
    /// the target to prove it holds one of them.
    public var targetKeys: [HandshakeKey]
    /// The target name to expect, if any.
    public var targetName: String?

    public init(hostName: String, hostKey: HandshakeKey? = nil, targetKeys: [HandshakeKey] = [], targetName: String? = nil) {
        self.hostName = hostName
        self.hostKey = hostKey
        self.targetKeys = targetKeys
        self.targetName = targetName
    }

    /// The connect request's host id for this host.
    public var hostID: [UInt8] { HandshakeTranscript.hostID(of: hostName) }
}

/// One connection's handshake on the initiator: built from the request it
/// sent and the accept it got, it makes the hello and checks the result.
public struct InitiatorHandshake: Sendable {
    public let credentials: InitiatorCredentials
    public let acceptAuth: AcceptAuth
    let transcript: HandshakeTranscript
    let initiatorNonce: [UInt8]
    let hostProof: [UInt8]?

    /// Fails when the accept has no handshake part, or names another target than expected,
    /// or the initiator requires a proof the target will not give.
    public init(credentials: InitiatorCredentials, request: [UInt8], accept: [UInt8]) throws(HandshakeFailure) {
        let a: AcceptAuth
        do throws(WireError) { a = try AcceptAuth(decoding: accept) } catch { throw .malformed(error.message) }
        if let expected = credentials.targetName, expected != a.targetName {
            throw .wrongTarget("the target calls itself '\(a.targetName)', not '\(expected)'")
        }
        if !credentials.targetKeys.isEmpty, !a.targetProves {
            throw .targetUnproven("target '\(a.targetName)' has no secret to prove itself with, and this host requires it (target key configured)")
        }
        self.credentials = credentials
        acceptAuth = a
        let nonce = HandshakeTranscript.nonce()
        let t = HandshakeTranscript(request: request, accept: accept, initiatorNonce: nonce, hostName: credentials.hostName)
        initiatorNonce = nonce
        transcript = t
        hostProof = credentials.hostKey.map { t.hostProof($0) }
    }

    /// The hello to SEND, naming the mailbox the target answers in.
    public func hello(mailboxAddress: UInt64, mailboxKey: UInt32) throws(HandshakeFailure) -> [UInt8] {
        do throws(WireError) {
            return try AuthHello(hostName: credentials.hostName, initiatorNonce: initiatorNonce,
                                 mailboxAddress: mailboxAddress, mailboxKey: mailboxKey, proof: hostProof).encoded()
        } catch { throw .malformed(error.message) }
    }

    /// Checks a complete result: accepted, and the target's proof when this host requires it.
    public func check(_ result: AuthResult) throws(HandshakeFailure) {
        if let r = result.rejection { throw .rejected(r) }
        guard !credentials.targetKeys.isEmpty else { return }
        let matched = result.proof.map { proof in
            credentials.targetKeys.reduce(false) { found, key in
                let m = HandshakeTranscript.equal(proof, transcript.targetProof(key, hostProof: hostProof))
                return found || m
            }
        } ?? false
        guard matched else {
            throw .targetUnproven("target '\(acceptAuth.targetName)' did not prove it holds the target secret (wrong or missing proof)")
        }
    }
}

/// Why an initiator's handshake failed.
public enum HandshakeFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// The target refused this host.
    case rejected(AuthRejectReason)
    case malformed(String)
    case wrongTarget(String)
    case targetUnproven(String)
    /// No result within the deadline.
    case timedOut(milliseconds: Int)

    public var description: String {
        switch self {
        case .rejected(let r): return "target refused the handshake: \(r)"
        case .malformed(let m): return "handshake: \(m)"
        case .wrongTarget(let m), .targetUnproven(let m): return m
        case .timedOut(let ms): return "no handshake result from the target within \(ms) ms"
        }
    }

    /// A sentence for the initiator's log naming the host and the endpoint.
    public func explained(host: String, endpoint: String) -> String {
        guard case .rejected(let r) = self else { return description }
        switch r {
        case .unknownHost: return "host \(host) is not known to the target (not in its [hosts]) and \(endpoint) does not allow any host"
        case .authenticationFailed: return "host \(host) failed authentication for \(endpoint): the target's secret for it differs from this host's key"
        case .hostNotAllowed: return "host \(host) is not allowed on \(endpoint)"
        case .hostMismatch: return "the target says host \(host)'s connect request carried another host's id"
        case .malformed: return "the target could not decode host \(host)'s handshake"
        }
    }
}
