/// The initiator's first message on a version 2 connection: one SEND, before
/// any command or frame (docs/wire-protocol.md, "Handshake"). 152 bytes:
///
/// magic u32 · version u8 · type u8 (1) · flags u8 (bit 0: proof present) ·
/// host name length u8 · initiator nonce [32] · mailbox address u64 ·
/// mailbox rkey u32 · reserved u32 · proof [32] · host name [64, NUL padded].
///
/// The mailbox is a buffer of at least `AuthResult.size` bytes the initiator
/// registered for remote write for this handshake only: the target RDMA-WRITEs
/// its `AuthResult` there. The proof is HMAC-SHA-256 under the host's secret
/// (`VireoAuth.HandshakeTranscript`).
public struct AuthHello: Equatable, Sendable {
    public static let size = 152
    public static let type: UInt8 = 1
    public static let flagProof: UInt8 = 1

    public var hostName: String
    public var initiatorNonce: [UInt8]
    public var mailboxAddress: UInt64
    public var mailboxKey: UInt32
    /// 32 bytes, or nil when the host has no secret.
    public var proof: [UInt8]?

    public init(hostName: String, initiatorNonce: [UInt8], mailboxAddress: UInt64, mailboxKey: UInt32, proof: [UInt8]?) {
        self.hostName = hostName
        self.initiatorNonce = initiatorNonce
        self.mailboxAddress = mailboxAddress
        self.mailboxKey = mailboxKey
        self.proof = proof
    }

    public func encoded() throws(WireError) -> [UInt8] {
        guard HandshakeName.isValid(hostName) else { throw WireError(HandshakeName.rule(for: "host name '\(hostName)'")) }
        guard initiatorNonce.count == 32, proof.map({ $0.count == 32 }) ?? true else {
            throw WireError("handshake nonce and proof must be 32 bytes")
        }
        var b = [UInt8](repeating: 0, count: Self.size)
        let name = Array(hostName.utf8)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            LE.store(p, 0, Wire.magic)
            LE.store(p, 4, Wire.version)
            LE.store(p, 5, Self.type)
            LE.store(p, 6, proof != nil ? Self.flagProof : UInt8(0))
            LE.store(p, 7, UInt8(name.count))
            LE.store(p, 40, mailboxAddress)
            LE.store(p, 48, mailboxKey)
        }
        b.replaceSubrange(8..<40, with: initiatorNonce)
        if let proof { b.replaceSubrange(56..<88, with: proof) }
        b.replaceSubrange(88..<88 + name.count, with: name)
        return b
    }

    /// Decodes and checks a hello from `count` received bytes at `p`
    /// (the receive buffer; nothing is read past `count`).
    public init(decoding p: UnsafeRawPointer, count: Int) throws(WireError) {
        guard count == Self.size else { throw WireError("handshake hello of \(count) bytes, expected \(Self.size)") }
        guard LE.load(p, 0, as: UInt32.self) == Wire.magic else { throw WireError("not a Vireo handshake hello (bad magic)") }
        let version = LE.load(p, 4, as: UInt8.self)
        guard version == Wire.version else { throw WireError("handshake hello of wire version \(version), expected \(Wire.version)") }
        guard LE.load(p, 5, as: UInt8.self) == Self.type else { throw WireError("first message is not a handshake hello (type \(LE.load(p, 5, as: UInt8.self)))") }
        let flags = LE.load(p, 6, as: UInt8.self)
        guard flags & ~Self.flagProof == 0 else { throw WireError("unknown hello flags 0x\(String(flags, radix: 16))") }
        guard LE.load(p, 52, as: UInt32.self) == 0 else { throw WireError("hello reserved bytes are not zero") }
        let bytes = UnsafeRawBufferPointer(start: p, count: count)
        let n = Int(LE.load(p, 7, as: UInt8.self))
        let nameArea = bytes[88..<(88 + HandshakeName.maxLength)]
        guard n >= 1, n <= HandshakeName.maxLength, nameArea.dropFirst(n).allSatisfy({ $0 == 0 }) else {
            throw WireError("host name length \(n) is outside 1-\(HandshakeName.maxLength) or not NUL padded")
        }
        let name = String(decoding: nameArea.prefix(n), as: UTF8.self)
        guard HandshakeName.isValid(name) else { throw WireError(HandshakeName.rule(for: "the host's name")) }
        let hasProof = flags & Self.flagProof != 0
        if !hasProof, !bytes[56..<88].allSatisfy({ $0 == 0 }) { throw WireError("hello without proof has nonzero proof bytes") }
        hostName = name
        initiatorNonce = Array(bytes[8..<40])
        mailboxAddress = LE.load(p, 40, as: UInt64.self)
        mailboxKey = LE.load(p, 48, as: UInt32.self)
        proof = hasProof ? Array(bytes[56..<88]) : nil
    }

    /// `init(decoding:count:)` over an array (tests, tools).
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var r: Result<AuthHello, WireError> = .failure(WireError("empty"))
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }
            do throws(WireError) { r = .success(try AuthHello(decoding: base, count: raw.count)) } catch { r = .failure(error) }
        }
        self = try r.get()
    }
}
