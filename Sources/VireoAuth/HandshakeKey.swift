import Crypto

/// A secret as the handshake uses it: an HMAC-SHA-256 key. Built from a
/// `SecretKey`'s bytes (32, 48 or 64); the bytes never leave this type.
public struct HandshakeKey: Sendable {
    private let secret: [UInt8]

    /// Fails on fewer than 32 bytes (HMAC-SHA-256 wants at least its output size).
    public init?(secret: [UInt8]) {
        guard secret.count >= 32 else { return nil }
        self.secret = secret
    }

    /// HMAC-SHA-256 of `parts`, in order (once per handshake: the key is made here).
    func mac(_ parts: [[UInt8]]) -> [UInt8] {
        var h = HMAC<SHA256>(key: SymmetricKey(data: secret))
        for p in parts { h.update(data: p) }
        return Array(h.finalize())
    }
}
