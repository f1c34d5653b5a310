import VireoWire
/// A host's or a target's secret: 32, 48 or 64 random bytes, the key of its
/// HMAC-SHA-256 challenge–response (docs/security.md).
///
/// Its text form follows NVMe's `DHHC-1:` layout, so an operator who has
/// handled NVMe-oF keys recognises it, with Vireo's own tag:
///
///     VIREO-1:00:<base64(secret ‖ CRC-32(secret), little-endian)>:
///
/// `00` says the secret is used as is (no transformation). The CRC-32 catches
/// a key mangled in a copy and paste before it fails a handshake. The text is
/// what `gen-key` writes and what the daemons read from their key files
/// (`SecretKey+File.swift`).
public struct SecretKey: Equatable, Sendable, CustomStringConvertible {
    /// The secret bytes.
    public let bytes: [UInt8]

    /// Lengths a secret may have (NVMe's: SHA-256, -384 and -512 sizes).
    public static let lengths: Set<Int> = [32, 48, 64]
    static let prefix = "VIREO-1:"
    static let transform = "00"

    /// Wraps `bytes` (one of `lengths`); nil otherwise.
    public init?(bytes: [UInt8]) {
        guard Self.lengths.contains(bytes.count) else { return nil }
        self.bytes = bytes
    }

    /// A new secret of `length` bytes (32, 48 or 64) from the system's cryptographic
    /// random source (`SystemRandomNumberGenerator`: getrandom(2) on Linux).
    public static func generate(length: Int = 32) -> SecretKey? {
        guard lengths.contains(length) else { return nil }
        var rng = SystemRandomNumberGenerator()
        return SecretKey(bytes: (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
    }

    /// The text form (`VIREO-1:00:…:`).
    public var text: String {
        var payload = bytes
        withUnsafeBytes(of: CRC32.checksum(bytes).littleEndian) { payload.append(contentsOf: $0) }
        return Self.prefix + Self.transform + ":" + Base64.encode(payload) + ":"
    }

    /// Never the secret: its length only (keys end up in logs through string interpolation).
    public var description: String { "SecretKey(\(bytes.count) bytes)" }

    /// Parses the text form; surrounding whitespace (a trailing newline) is ignored.
    /// The error says which part is wrong and never quotes the key.
    public init(text raw: String) throws(ConfigError) {
        let text = raw.trimmingWhitespace
        guard text.hasPrefix(Self.prefix) else {
            throw ConfigError("not a Vireo secret key: it must start with \(Self.prefix) (make one with gen-key)")
        }
        let fields = text.dropFirst(Self.prefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[2].isEmpty else {
            throw ConfigError("malformed secret key: expected \(Self.prefix)00:<base64>: with a closing colon")
        }
        guard fields[0] == Self.transform else {
            throw ConfigError("secret key transformation \(fields[0]) is not supported (only 00: used as is)")
        }
        guard let payload = Base64.decode(fields[1]) else {
            throw ConfigError("malformed secret key: its key part is not base64")
        }
        let length = payload.count - 4
        guard Self.lengths.contains(length) else {
            throw ConfigError("secret key of \(max(length, 0)) bytes: it must be 32, 48 or 64 bytes")
        }
        let secret = Array(payload[0..<length])
        let stored = payload[length...].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard stored == CRC32.checksum(secret) else {
            throw ConfigError("secret key checksum mismatch: the key was altered or mistyped")
        }
        bytes = secret
    }
}

/// Standard base64 (RFC 4648 §4, with padding), strict: no whitespace or other characters.
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            let b0 = UInt32(bytes[i]), b1 = n > 1 ? UInt32(bytes[i + 1]) : 0, b2 = n > 2 ? UInt32(bytes[i + 2]) : 0
            let v = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(v >> 18 & 63)])
            out.append(alphabet[Int(v >> 12 & 63)])
            out.append(n > 1 ? alphabet[Int(v >> 6 & 63)] : UInt8(ascii: "="))
            out.append(n > 2 ? alphabet[Int(v & 63)] : UInt8(ascii: "="))
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes, or nil when `text` is not canonical padded base64.
    static func decode(_ text: Substring) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard !chars.isEmpty, chars.count % 4 == 0 else { return nil }
        var out: [UInt8] = []
        for q in stride(from: 0, to: chars.count, by: 4) {
            var v: UInt32 = 0
            var pad = 0
            for k in 0..<4 {
                let c = chars[q + k]
                if c == UInt8(ascii: "=") {
                    // Padding only at the end, in the last two places.
                    guard q + 4 == chars.count, k >= 2 else { return nil }
                    pad += 1
                    v <<= 6
                    continue
                }
                guard pad == 0, let d = alphabet.firstIndex(of: c) else { return nil }
                v = v << 6 | UInt32(d)
            }
            out.append(UInt8(v >> 16 & 0xFF))
            if pad < 2 { out.append(UInt8(v >> 8 & 0xFF)) }
            if pad < 1 { out.append(UInt8(v & 0xFF)) }
        }
        guard encode(out) == String(decoding: chars, as: UTF8.self) else { return nil }   // canonical only
        return out
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and line ends.
    var trimmingWhitespace: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return self[first...last]
    }
}
