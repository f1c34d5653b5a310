/// Which RBD image: `pool/[namespace/]image[@snapshot]`, as the `rbd` tool writes it (an
/// export's `rbd` key, an `RBDImage`'s name). A snapshot is opened read-only.
public struct RBDImageSpec: Equatable, Sendable, CustomStringConvertible {
    public var pool: String
    public var namespace: String?
    public var image: String
    public var snapshot: String?

    public init(pool: String, namespace: String? = nil, image: String, snapshot: String? = nil) {
        self.pool = pool
        self.namespace = namespace
        self.image = image
        self.snapshot = snapshot
    }

    /// Parses `pool/image`, `pool/namespace/image`, either with `@snapshot`; nil when a part
    /// is empty or has characters Ceph does not allow in names (`/`, `@`, control characters).
    public init?(_ text: String) {
        var rest = Substring(text)
        var snap: String?
        if let at = rest.firstIndex(of: "@") {
            snap = String(rest[rest.index(after: at)...])
            rest = rest[..<at]
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let all = parts + (snap.map { [$0] } ?? [])
        guard all.allSatisfy({ Self.isValidPart($0) }) else { return nil }
        pool = parts[0]
        namespace = parts.count == 3 ? parts[1] : nil
        image = parts[parts.count - 1]
        snapshot = snap
    }

    static func isValidPart(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 255 && s.utf8.allSatisfy { $0 > 0x20 && $0 != 0x7f && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "@") }
    }

    public var description: String {
        pool + "/" + (namespace.map { $0 + "/" } ?? "") + image + (snapshot.map { "@" + $0 } ?? "")
    }
}
