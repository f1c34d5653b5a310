import Crypto
import VireoWire

/// What both proofs of one handshake cover: the connect request's 56 bytes
/// (endpoint name, kind, queue, every connect parameter, host id), the
/// accept's first `AcceptAuth.acceptSize` bytes (the geometry granted, the
/// target's nonce and name), the initiator's nonce and the host's name.
///
/// - host proof = HMAC-SHA-256(host secret, "vireo-2 host" ‖ transcript)
/// - target proof = HMAC-SHA-256(target secret, "vireo-2 target" ‖ transcript ‖ host proof)
///
/// Both nonces are fresh per connection, so neither proof verifies on any
/// other connection: a captured exchange cannot be replayed.
public struct HandshakeTranscript: Sendable {
    let bytes: [UInt8]

    public init(request: [UInt8], accept: [UInt8], initiatorNonce: [UInt8], hostName: String) {
        let name = Array(hostName.utf8)
        bytes = Array(request.prefix(ConnectRequest.size)) + Array(accept.prefix(AcceptAuth.acceptSize))
            + initiatorNonce + [UInt8(truncatingIfNeeded: name.count)] + name
    }

    static let hostLabel = Array("vireo-2 host".utf8)
    static let targetLabel = Array("vireo-2 target".utf8)

    public func hostProof(_ key: HandshakeKey) -> [UInt8] { key.mac([Self.hostLabel, bytes]) }

    public func targetProof(_ key: HandshakeKey, hostProof: [UInt8]?) -> [UInt8] {
        key.mac([Self.targetLabel, bytes, hostProof ?? []])
    }

    /// Compares two proofs in time that does not depend on where they differ.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var d: UInt8 = 0
        for i in 0..<a.count { d |= a[i] ^ b[i] }
        return d == 0
    }

    /// 32 random bytes from the system's CSPRNG (getrandom).
    public static func nonce() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<AcceptAuth.nonceSize).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    /// The 16 host-id bytes of a connect request from `hostName`: SHA-256's
    /// first half. The target checks it against the authenticated name, so a
    /// host's queue quotas, counted from the request, are the named host's.
    public static func hostID(of hostName: String) -> [UInt8] {
        Array(SHA256.hash(data: Array("vireo host id ".utf8) + Array(hostName.utf8)).prefix(16))
    }
}
