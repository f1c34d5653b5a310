/// The handshake part of a version 2 accept (rdma_cm REP private data), at
/// `offset` after the endpoint's geometry (48 bytes for both kinds; a packet
/// geometry's 24 are followed by 24 zero bytes):
///
/// target nonce [32] · flags u8 (bit 0: the target proves itself) ·
/// name length u8 · reserved u16 · target name [64, NUL padded].
///
/// The nonce is fresh per connection; the initiator's proof covers it, so a
/// captured exchange cannot be replayed on another connection.
public struct AcceptAuth: Equatable, Sendable {
    /// Where it starts in the accept data.
    public static let offset = 48
    public static let size = 100
    /// Accept data bytes of a version 2 accept: geometry area + this.
    public static let acceptSize = offset + size
    public static let nonceSize = 32
    public static let flagTargetProves: UInt8 = 1

    public var targetNonce: [UInt8]
    /// The target proves its identity in the result (it has a secret).
    public var targetProves: Bool
    public var targetName: String

    public init(targetNonce: [UInt8], targetProves: Bool, targetName: String) {
        self.targetNonce = targetNonce
        self.targetProves = targetProves
        self.targetName = targetName
    }

    /// Writes the 100 bytes at `offset` of `accept` (which must hold `acceptSize` bytes).
    public func write(into accept: inout [UInt8]) throws(WireError) {
        guard targetNonce.count == Self.nonceSize else { throw WireError("target nonce must be \(Self.nonceSize) bytes") }
        guard HandshakeName.isValid(targetName) else { throw WireError(HandshakeName.rule(for: "target name '\(targetName)'")) }
        if accept.count < Self.acceptSize { accept += [UInt8](repeating: 0, count: Self.acceptSize - accept.count) }
        let o = Self.offset
        accept.replaceSubrange(o..<o + 32, with: targetNonce)
        accept[o + 32] = targetProves ? Self.flagTargetProves : 0
        let name = Array(targetName.utf8)
        accept[o + 33] = UInt8(name.count)
        accept[o + 34] = 0
        accept[o + 35] = 0
        accept.replaceSubrange(o + 36..<o + 36 + HandshakeName.maxLength,
                               with: name + [UInt8](repeating: 0, count: HandshakeName.maxLength - name.count))
    }

    /// Decodes and checks the handshake part of a peer's accept data.
    public init(decoding accept: [UInt8]) throws(WireError) {
        guard accept.count >= Self.acceptSize else {
            throw WireError("accept data of \(accept.count) bytes has no handshake part (need \(Self.acceptSize): a version 1 target?)")
        }
        let o = Self.offset
        let flags = accept[o + 32]
        guard flags & ~Self.flagTargetProves == 0 else { throw WireError("unknown accept handshake flags 0x\(String(flags, radix: 16))") }
        guard accept[o + 34] == 0, accept[o + 35] == 0 else { throw WireError("accept handshake reserved bytes are not zero") }
        let n = Int(accept[o + 33])
        let nameArea = accept[(o + 36)..<(o + 36 + HandshakeName.maxLength)]
        guard n >= 1, n <= HandshakeName.maxLength, nameArea.dropFirst(n).allSatisfy({ $0 == 0 }) else {
            throw WireError("target name length \(n) is outside 1-\(HandshakeName.maxLength) or not NUL padded")
        }
        let name = String(decoding: nameArea.prefix(n), as: UTF8.self)
        guard HandshakeName.isValid(name) else { throw WireError(HandshakeName.rule(for: "the target's name")) }
        targetNonce = Array(accept[o..<o + 32])
        targetProves = flags & Self.flagTargetProves != 0
        targetName = name
    }
}

/// Host and target names (like NVMe NQNs, shorter): 1-64 bytes of
/// `A-Z a-z 0-9 . _ : -`.
public enum HandshakeName {
    public static let maxLength = 64

    public static func isValid(_ name: String) -> Bool {
        let u = Array(name.utf8)
        return !u.isEmpty && u.count <= maxLength && u.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a)
                || $0 == 0x2e || $0 == 0x5f || $0 == 0x3a || $0 == 0x2d
        }
    }

    /// `prefix` + `machine`, with every character outside the rule made `-`, cut to 64 bytes:
    /// the default names ("vireo-target:storage-1", "compute-1").
    public static func derived(prefix: String = "", machine: String) -> String {
        let allowed = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-".utf8)
        let bytes = Array((prefix + machine).utf8.map { allowed.contains($0) ? $0 : UInt8(ascii: "-") }.prefix(maxLength))
        return bytes.isEmpty ? "localhost" : String(decoding: bytes, as: UTF8.self)
    }

    /// The rule, for messages: "<what> must be 1-64 characters of A-Z a-z 0-9 . _ : -".
    public static func rule(for what: String) -> String {
        "\(what) must be 1-\(maxLength) characters of A-Z a-z 0-9 . _ : -"
    }
}
