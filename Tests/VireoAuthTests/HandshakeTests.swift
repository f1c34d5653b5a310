import Testing
import VireoAuth
import VireoWire

/// The handshake's cryptography and decisions, without a fabric: one exchange
/// is the request and accept bytes, the initiator's hello, the target's
/// verdict, and the initiator's check of the result.
struct HandshakeTests {
    static let hostSecret = [UInt8](repeating: 0x11, count: 32)
    static let targetSecret = [UInt8](repeating: 0x22, count: 32)

    static func request(host: String = "host-a") throws -> [UInt8] {
        try ConnectRequest(kind: .block, name: "vol0", queueIndex: 0, queueDepth: 16, maxSegments: 8, maxIOBytes: 1 << 20,
                           hostID: HandshakeTranscript.hostID(of: host), wantsWrite: true).encoded()
    }

    static func policy(hosts: [String: [HandshakeKey]], targetKey: Bool = true) -> AccessPolicy {
        AccessPolicy(targetName: "target-1", targetKey: targetKey ? HandshakeKey(secret: targetSecret) : nil, hosts: hosts)
    }

    /// One exchange: the target's verdict and, when it answered, what the initiator's check says.
    static func exchange(policy: AccessPolicy, endpoint: AccessPolicy.Endpoint, credentials: InitiatorCredentials,
                         claimedHost: String? = nil) throws -> (TargetHandshake.Verdict, Result<Void, HandshakeFailure>?) {
        let req = try request(host: claimedHost ?? credentials.hostName)
        let accept = TargetHandshake.accept(geometry: [UInt8](repeating: 0, count: 48), policy: policy)
        let target = TargetHandshake(policy: policy, endpoint: endpoint, endpointDescription: "export vol0",
                                     request: req, accept: accept, claimedHostID: Array(req[16..<32]))
        let initiator = try InitiatorHandshake(credentials: credentials, request: req, accept: accept)
        let hello = try initiator.hello(mailboxAddress: 0x1000, mailboxKey: 7)
        let verdict = hello.withUnsafeBytes { target.verify($0.baseAddress!, count: $0.count) }
        let resultBytes: [UInt8]
        switch verdict {
        case .accepted(_, let r, let a, let k), .rejected(_, _, let r, let a, let k):
            #expect(a == 0x1000 && k == 7)
            resultBytes = r
        case .malformed:
            return (verdict, nil)
        }
        guard case .result(let result) = AuthResult.read(resultBytes) else {
            Issue.record("result does not read back")
            return (verdict, nil)
        }
        do throws(HandshakeFailure) { try initiator.check(result); return (verdict, .success(())) } catch {
            return (verdict, .failure(error))
        }
    }

    static let allowA = AccessPolicy.Endpoint(allowAnyHost: false, allowedHosts: ["host-a"])

    @Test func knownHostWithTheRightSecretIsAcceptedAndTheTargetProvesItself() throws {
        let p = Self.policy(hosts: ["host-a": [HandshakeKey(secret: Self.hostSecret)!]])
        let c = InitiatorCredentials(hostName: "host-a", hostKey: HandshakeKey(secret: Self.hostSecret),
                                     targetKeys: [HandshakeKey(secret: Self.targetSecret)!], targetName: "target-1")
        let (v, check) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: c)
        guard case .accepted(let host, _, _, _) = v else { Issue.record("not accepted: \(v)"); return }
        #expect(host == "host-a")
        #expect(throws: Never.self) { try check?.get() }
    }

    @Test func wrongSecretIsRefusedAsAuthenticationFailed() throws {
        let p = Self.policy(hosts: ["host-a": [HandshakeKey(secret: Self.hostSecret)!]])
        let c = InitiatorCredentials(hostName: "host-a", hostKey: HandshakeKey(secret: [UInt8](repeating: 0x33, count: 32)))
        let (v, check) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: c)
        guard case .rejected(.authenticationFailed, _, _, _, _) = v else { Issue.record("\(v)"); return }
        #expect(check.map { if case .failure(.rejected(.authenticationFailed)) = $0 { true } else { false } } == true)
    }

    @Test func missingProofIsRefusedWhenTheTargetHasASecretForTheHost() throws {
        let p = Self.policy(hosts: ["host-a": [HandshakeKey(secret: Self.hostSecret)!]])
        let (v, _) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: InitiatorCredentials(hostName: "host-a"))
        guard case .rejected(.authenticationFailed, _, _, _, _) = v else { Issue.record("\(v)"); return }
    }

    @Test func unknownAndUnlistedHostsAreRefusedWithTheirReasons() throws {
        let p = Self.policy(hosts: ["host-a": [], "host-b": []])
        let (v1, _) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: InitiatorCredentials(hostName: "host-z"))
        guard case .rejected(.unknownHost, _, _, _, _) = v1 else { Issue.record("\(v1)"); return }
        let (v2, c2) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: InitiatorCredentials(hostName: "host-b"))
        guard case .rejected(.hostNotAllowed, let message, _, _, _) = v2 else { Issue.record("\(v2)"); return }
        #expect(message == "host 'host-b' is not allowed on export vol0")
        guard case .failure(let f)? = c2 else { Issue.record("initiator accepted"); return }
        #expect(f.explained(host: "host-b", endpoint: "export vol0") == "host host-b is not allowed on export vol0")
        // allow_any_host: an unknown host gets in; a known one with a secret must still prove itself.
        let any = AccessPolicy.Endpoint(allowAnyHost: true)
        let (v3, _) = try Self.exchange(policy: p, endpoint: any, credentials: InitiatorCredentials(hostName: "host-z"))
        guard case .accepted = v3 else { Issue.record("\(v3)"); return }
        let keyed = Self.policy(hosts: ["host-a": [HandshakeKey(secret: Self.hostSecret)!]])
        let (v4, _) = try Self.exchange(policy: keyed, endpoint: any, credentials: InitiatorCredentials(hostName: "host-a"))
        guard case .rejected(.authenticationFailed, _, _, _, _) = v4 else { Issue.record("\(v4)"); return }
    }

    /// While a host's key is rotated the target holds both: a proof under either is taken.
    @Test func eitherOfTwoHostKeysIsTakenWhileRotating() throws {
        let old = [UInt8](repeating: 0x01, count: 32), new = [UInt8](repeating: 0x02, count: 48)
        let p = Self.policy(hosts: ["host-a": [HandshakeKey(secret: old)!, HandshakeKey(secret: new)!]])
        for (key, accepted) in [(old, true), (new, true), ([UInt8](repeating: 0x03, count: 32), false)] {
            let c = InitiatorCredentials(hostName: "host-a", hostKey: HandshakeKey(secret: key)!)
            let (v, _) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: c)
            if case .accepted = v { #expect(accepted) } else { #expect(!accepted, "\(v)") }
        }
        // And an initiator holding the target's old and new keys takes a proof under either.
        let c = InitiatorCredentials(hostName: "host-a", hostKey: HandshakeKey(secret: old)!,
                                     targetKeys: [HandshakeKey(secret: [UInt8](repeating: 9, count: 32))!, HandshakeKey(secret: Self.targetSecret)!])
        let (_, check) = try Self.exchange(policy: p, endpoint: Self.allowA, credentials: c)
        #expect(throws: Never.self) { try check?.get() }
    }

    /// A named switch port bound to hosts: another admitted host cannot squat it.
    @Test func aBoundPortAdmitsOnlyItsHosts() throws {
        let p = Self.policy(hosts: ["host-a": [], "host-b": []])
        let req = try ConnectRequest(kind: .packet, name: "lan0", queueIndex: 0, queueDepth: 16, maxSegments: 1,
                                     maxIOBytes: 1530, hostID: [], wantsWrite: false, port: .named("vm1")).encoded()
        let accept = TargetHandshake.accept(geometry: [UInt8](repeating: 0, count: 24), policy: p)
        let t = TargetHandshake(policy: p, endpoint: AccessPolicy.Endpoint(allowAnyHost: false, allowedHosts: ["host-a", "host-b"]),
                                endpointDescription: "network lan0", request: req, accept: accept, claimedHostID: nil,
                                boundPort: ("vm1", ["host-a"]))
        for (host, admitted) in [("host-a", true), ("host-b", false)] {
            let hello = try InitiatorHandshake(credentials: InitiatorCredentials(hostName: host), request: req, accept: accept)
                .hello(mailboxAddress: 1, mailboxKey: 1)
            let v = hello.withUnsafeBytes { t.verify($0.baseAddress!, count: $0.count) }
            switch v {
            case .accepted: #expect(admitted)
            case .rejected(.hostNotAllowed, let m, _, _, _):
                #expect(!admitted && m == "host 'host-b' may not claim port vm1 of network lan0")
            default: Issue.record("\(host): \(v)")
            }
        }
    }

    @Test func aRequestCarryingAnotherHostsIDIsRefused() throws {
        let p = Self.policy(hosts: ["host-a": [], "host-b": []])
        let (v, _) = try Self.exchange(policy: p, endpoint: AccessPolicy.Endpoint(allowAnyHost: true),
                                       credentials: InitiatorCredentials(hostName: "host-a"), claimedHost: "host-b")
        guard case .rejected(.hostMismatch, _, _, _, _) = v else { Issue.record("\(v)"); return }
    }

    /// A hello captured on one connection, sent on another: the target's nonce differs, so the proof fails.
    @Test func aReplayedHelloFailsOnAnotherConnection() throws {
        let p = Self.policy(hosts: ["host-a": [HandshakeKey(secret: Self.hostSecret)!]])
        let c = InitiatorCredentials(hostName: "host-a", hostKey: HandshakeKey(secret: Self.hostSecret))
        let req = try Self.request()
        let first = TargetHandshake.accept(geometry: [UInt8](repeating: 0, count: 48), policy: p)
        let captured = try InitiatorHandshake(credentials: c, request: req, accept: first).hello(mailboxAddress: 1, mailboxKey: 1)
        let second = TargetHandshake(policy: p, endpoint: Self.allowA, endpointDescription: "export vol0", request: req,
                                     accept: TargetHandshake.accept(geometry: [UInt8](repeating: 0, count: 48), policy: p),
                                     claimedHostID: Array(req[16..<32]))
        let v = captured.withUnsafeBytes { second.verify($0.baseAddress!, count: $0.count) }
        guard case .rejected(.authenticationFailed, _, _, _, _) = v else { Issue.record("\(v)"); return }
        // The same hello on its own connection is accepted: the replay, not the hello, is refused.
        let own = TargetHandshake(policy: p, endpoint: Self.allowA, endpointDescription: "export vol0", request: req,
                                  accept: first, claimedHostID: Array(req[16..<32]))
        let ok = captured.withUnsafeBytes { own.verify($0.baseAddress!, count: $0.count) }
        guard case .accepted = ok else { Issue.record("\(ok)"); return }
    }

    @Test func theInitiatorRefusesATargetThatCannotProveItself() throws {
        let wrongTarget = AccessPolicy(targetName: "target-1", targetKey: HandshakeKey(secret: [UInt8](repeating: 0x44, count: 32)),
                                       hosts: ["host-a": []])
        let c = InitiatorCredentials(hostName: "host-a", targetKeys: [HandshakeKey(secret: Self.targetSecret)!])
        let (_, check) = try Self.exchange(policy: wrongTarget, endpoint: Self.allowA, credentials: c)
        guard case .failure(.targetUnproven)? = check else { Issue.record("\(String(describing: check))"); return }
        // A target without a secret is refused before the hello is sent.
        let req = try Self.request()
        let noKey = TargetHandshake.accept(geometry: [UInt8](repeating: 0, count: 48), policy: Self.policy(hosts: [:], targetKey: false))
        #expect(throws: HandshakeFailure.self) { try InitiatorHandshake(credentials: c, request: req, accept: noKey) }
        // So is a target with another name than the one configured.
        var named = InitiatorCredentials(hostName: "host-a")
        named.targetName = "target-2"
        let a = TargetHandshake.accept(geometry: [UInt8](repeating: 0, count: 48), policy: Self.policy(hosts: [:]))
        #expect(throws: HandshakeFailure.self) { try InitiatorHandshake(credentials: named, request: req, accept: a) }
    }

    @Test func aTornOrCorruptResultReadsAsIncomplete() {
        var r = AuthResult(rejection: nil, proof: [UInt8](repeating: 9, count: 32)).encoded()
        #expect(AuthResult.read(r) == .result(AuthResult(rejection: nil, proof: [UInt8](repeating: 9, count: 32))))
        r[20] ^= 1
        #expect(AuthResult.read(r) == .incomplete)
        #expect(AuthResult.read([UInt8](repeating: 0, count: 48)) == .incomplete)
        // A version 1 accept (48 bytes of geometry only) has no handshake part.
        #expect(throws: WireError.self) { try AcceptAuth(decoding: [UInt8](repeating: 0, count: 48)) }
    }

    @Test func malformedHellosAreRefusedWithoutReadingPastTheirLength() {
        let p = Self.policy(hosts: [:])
        let t = TargetHandshake(policy: p, endpoint: AccessPolicy.Endpoint(allowAnyHost: true), endpointDescription: "export vol0",
                                request: [], accept: [], claimedHostID: nil)
        for bytes in [[UInt8](repeating: 0, count: 16), [UInt8](repeating: 0, count: AuthHello.size),
                      [UInt8](repeating: 0xff, count: AuthHello.size + 1)] {
            let v = bytes.withUnsafeBytes { t.verify($0.baseAddress!, count: $0.count) }
            guard case .malformed = v else { Issue.record("\(bytes.count) bytes: \(v)"); continue }
        }
    }
}
