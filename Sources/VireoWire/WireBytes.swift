/// Little-endian field access over raw bytes. Callers check bounds first
/// (every public decoder does); these only load and store.
@usableFromInline
enum LE {
    @inline(__always) @usableFromInline
    static func load<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ offset: Int, as: T.Type) -> T {
        T(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inline(__always) @usableFromInline
    static func store<T: FixedWidthInteger>(_ p: UnsafeMutableRawPointer, _ offset: Int, _ value: T) {
        p.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

extension Array where Element == UInt8 {
    /// Runs `body` over at least `count` bytes: the array, zero padded if shorter.
    func withPadded<R>(to count: Int, _ body: (UnsafeRawPointer) -> R) -> R {
        var copy = self
        if copy.count < count { copy += [UInt8](repeating: 0, count: count - copy.count) }
        return copy.withUnsafeBytes { body($0.baseAddress!) }
    }
}
