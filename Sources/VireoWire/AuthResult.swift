/// Why a target refused a handshake (an `AuthResult`'s status).
public enum AuthRejectReason: UInt16, Sendable, CaseIterable {
    /// The host name is not configured on the target (and the endpoint does not allow any host).
    case unknownHost = 1
    /// The proof is missing or wrong: the host's secret is not the target's copy of it.
    case authenticationFailed = 2
    /// The host is known but not on the endpoint's `allowed_hosts`.
    case hostNotAllowed = 3
    /// The connect request's host id is not the named host's.
    case hostMismatch = 4
    /// The hello could not be decoded.
    case malformed = 5
}

/// The target's answer to a hello, RDMA-WRITTEN into the initiator's mailbox.
/// 48 bytes:
///
/// magic u32 · version u8 · type u8 (2) · status u16 (0 accepted, else an
/// `AuthRejectReason`) · flags u8 (bit 0: proof present) · reserved [3] ·
/// proof [32] · CRC-32 u32 of bytes 0..<44.
///
/// The initiator polls its mailbox: the CRC tells a whole result from a
/// half-written one (RDMA WRITE data placement has no order the CPU can see).
public struct AuthResult: Equatable, Sendable {
    public static let size = 48
    public static let type: UInt8 = 2
    public static let flagProof: UInt8 = 1

    /// nil: accepted.
    public var rejection: AuthRejectReason?
    /// The target's proof (32 bytes), or nil when it has no secret or rejected.
    public var proof: [UInt8]?

    public init(rejection: AuthRejectReason?, proof: [UInt8]?) {
        self.rejection = rejection
        self.proof = proof
    }

    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            LE.store(p, 0, Wire.magic)
            LE.store(p, 4, Wire.version)
            LE.store(p, 5, Self.type)
            LE.store(p, 6, rejection?.rawValue ?? 0)
            LE.store(p, 8, proof != nil ? Self.flagProof : UInt8(0))
        }
        if let proof, proof.count == 32 { b.replaceSubrange(12..<44, with: proof) }
        let crc = CRC32.checksum(b[0..<44])
        b.withUnsafeMutableBytes { LE.store($0.baseAddress!, 44, crc) }
        return b
    }

    /// What a mailbox holds: nothing yet (or a torn write, read again), or a decoded result.
    public enum Reading: Equatable, Sendable {
        case incomplete
        case result(AuthResult)
        case invalid(WireError)
    }

    /// Reads a mailbox's 48 bytes. `incomplete` until the magic and the CRC match.
    public static func read(_ bytes: [UInt8]) -> Reading {
        guard bytes.count >= size else { return .incomplete }
        let (magic, crc) = bytes.withUnsafeBytes { (LE.load($0.baseAddress!, 0, as: UInt32.self), LE.load($0.baseAddress!, 44, as: UInt32.self)) }
        guard magic == Wire.magic, crc == CRC32.checksum(bytes[0..<44]) else { return .incomplete }
        guard bytes[4] == Wire.version, bytes[5] == type else { return .invalid(WireError("handshake result of version \(bytes[4]), type \(bytes[5])")) }
        let status = bytes.withUnsafeBytes { LE.load($0.baseAddress!, 6, as: UInt16.self) }
        let flags = bytes[8]
        guard flags & ~flagProof == 0, bytes[9] == 0, bytes[10] == 0, bytes[11] == 0 else {
            return .invalid(WireError("handshake result has unknown flags or nonzero reserved bytes"))
        }
        var rejection: AuthRejectReason?
        if status != 0 {
            guard let r = AuthRejectReason(rawValue: status) else { return .invalid(WireError("handshake result status \(status) is unknown")) }
            rejection = r
        }
        let hasProof = flags & flagProof != 0
        return .result(AuthResult(rejection: rejection, proof: hasProof ? Array(bytes[12..<44]) : nil))
    }
}
