/// One libFuzzer target: a function that takes any bytes and must neither
/// trap nor touch memory it does not own, plus valid seed inputs built with
/// the real encoders (committed under `Fuzz/corpus/<name>/`).
public struct FuzzHarness: Sendable {
    /// Corpus directory name and the harness's name in logs.
    public let name: String
    /// Runs one input. Checks its own invariants with `FuzzCheck.require`.
    public let run: @Sendable (UnsafeRawBufferPointer) -> Void
    /// Valid inputs to start from.
    public let seeds: @Sendable () -> [[UInt8]]

    /// A harness named `name`.
    public init(name: String, run: @escaping @Sendable (UnsafeRawBufferPointer) -> Void,
                seeds: @escaping @Sendable () -> [[UInt8]]) {
        self.name = name
        self.run = run
        self.seeds = seeds
    }

    /// Every harness, for the corpus replay test.
    public static let all: [FuzzHarness] = [.wire, .virtqueue, .vhostUser, .vhostUserSession, .packetSwitch]
}

/// Invariant checks inside harnesses: a violated one is a finding, so it
/// must stop the run loudly (libFuzzer records the input that caused it).
public enum FuzzCheck {
    /// Traps with `message` when `condition` is false. Harness code only:
    /// the code under test must never trap on its input.
    public static func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                               file: StaticString = #fileID, line: UInt = #line) {
        if !condition() { fatalError("fuzz invariant violated: \(message())", file: file, line: line) }
    }
}

/// Reads an input front to back; past the end every read yields zeros, so a
/// harness never needs a length check of its own.
public struct FuzzInput {
    let bytes: UnsafeRawBufferPointer
    /// Next byte to read.
    public private(set) var offset = 0

    /// A reader over `bytes` (not copied; valid while `bytes` is).
    public init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Bytes not read yet.
    public var remaining: Int { max(0, bytes.count - offset) }
    /// Whether every byte has been read.
    public var isEmpty: Bool { remaining == 0 }

    /// The next little-endian integer (zero-padded past the end).
    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size {
            let b: UInt8 = offset < bytes.count ? bytes[offset] : 0
            offset += 1
            v |= T(truncatingIfNeeded: b) << (8 * i)
        }
        return v
    }

    /// The next `count` bytes (fewer at the end).
    public mutating func take(_ count: Int) -> UnsafeRawBufferPointer {
        let n = max(0, min(count, remaining))
        // `offset` may be past the end (a read took zeros there): slice from the end then.
        let start = min(offset, bytes.count)
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + n)])
    }

    /// Everything not read yet.
    public mutating func rest() -> UnsafeRawBufferPointer { take(remaining) }
}
