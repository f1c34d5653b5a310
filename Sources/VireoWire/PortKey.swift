/// Which switch port a packet connection belongs to, when the initiator says
/// (connect flags bit 1; the 16 host-id bytes carry it). Every queue pair of
/// one NIC sends the same key, and the target's switch treats connections
/// with equal keys on one network as one port.
public enum PortKey: Hashable, Sendable {
    /// A port named in the target's configuration (flags bit 2): 1-15
    /// characters of A-Z a-z 0-9 . _ -, NUL padded.
    case named(String)
    /// An unnamed NIC with several queue pairs: 16 opaque bytes, random per NIC.
    case anonymous([UInt8])

    public static let size = 16
    public static let maxNameLength = 15

    /// Whether `name` can name a port: 1-15 bytes of [A-Za-z0-9._-] (no ':',
    /// so `NAME:MAC+MAC` flag forms split unambiguously).
    public static func isValidName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        return !u.isEmpty && u.count <= maxNameLength && u.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a)
                || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d
        }
    }

    /// A fresh anonymous key (16 random bytes).
    public static func random() -> PortKey {
        var g = SystemRandomNumberGenerator()
        return .anonymous((0..<size).map { _ in UInt8.random(in: 0...255, using: &g) })
    }

    /// The 16 bytes on the wire.
    public var bytes: [UInt8] {
        switch self {
        case .named(let n):
            let u = Array(n.utf8.prefix(Self.maxNameLength))
            return u + [UInt8](repeating: 0, count: Self.size - u.count)
        case .anonymous(let b):
            let u = Array(b.prefix(Self.size))
            return u + [UInt8](repeating: 0, count: Self.size - u.count)
        }
    }

    /// The port name, for named keys.
    public var name: String? {
        if case .named(let n) = self { return n }
        return nil
    }

    /// Decodes the 16 key bytes; nil for a named key that is not a valid name
    /// (bytes after the first NUL must be NUL too).
    public init?(bytes: [UInt8], named: Bool) {
        guard bytes.count == Self.size else { return nil }
        guard named else {
            self = .anonymous(bytes)
            return
        }
        let name = bytes.prefix { $0 != 0 }
        guard bytes.dropFirst(name.count).allSatisfy({ $0 == 0 }) else { return nil }
        let s = String(decoding: name, as: UTF8.self)
        guard Self.isValidName(s) else { return nil }
        self = .named(s)
    }
}

extension PortKey: CustomStringConvertible {
    public var description: String {
        switch self {
        case .named(let n): return "port \(n)"
        case .anonymous(let b): return "nic " + b.prefix(4).map { String($0, radix: 16).leftPadded(2) }.joined()
        }
    }
}

private extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
