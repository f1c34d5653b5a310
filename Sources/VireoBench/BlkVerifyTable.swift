/// What `--verify` knows about each block of the span: the generation of the
/// last write that completed OK (0: unknown contents), plus an in-flight bit
/// so that no two requests to one block are ever in flight together. Each
/// queue owns a disjoint slice of blocks, so threads never share an entry.
///
/// Preallocated once; the hot path only loads and stores words.
final class BlkVerifyTable: @unchecked Sendable {
    // SAFETY: entries [q*perQueue, (q+1)*perQueue) are touched by queue q's thread only.
    static let busy: UInt32 = 1 << 31
    /// The generation of a block last written by WRITE_ZEROES: it holds zeros.
    static let zeroed: UInt32 = busy - 1
    let blocks: Int
    private let entries: UnsafeMutablePointer<UInt32>

    init(blocks: Int) {
        self.blocks = blocks
        entries = .allocate(capacity: max(blocks, 1))
        entries.initialize(repeating: 0, count: max(blocks, 1))
    }

    deinit { entries.deallocate() }

    @inline(__always) subscript(_ block: Int) -> UInt32 {
        get { entries[block] }
        set { entries[block] = newValue }
    }

    @inline(__always) func isBusy(_ block: Int) -> Bool { entries[block] & Self.busy != 0 }

    /// The generation after `g` (never 0, `zeroed` or the busy bit).
    @inline(__always) static func nextGeneration(_ g: UInt32) -> UInt32 {
        let n = (g & ~busy) &+ 1
        return n >= zeroed ? 1 : n
    }

    /// The 64-bit word `i` of the pattern of the block at byte `offset` written with generation `gen`.
    @inline(__always) static func seed(offset: UInt64, generation gen: UInt32) -> UInt64 {
        var x = offset &* 0x9E37_79B9_7F4A_7C15 ^ (UInt64(gen) &* 0xC2B2_AE3D_27D4_EB4F)
        x ^= x >> 31
        return x | 1
    }

    /// Fills `count` bytes (a multiple of 8) at `p` with the pattern of (offset, gen).
    @inline(__always) static func fill(_ p: UnsafeMutableRawPointer, count: Int, offset: UInt64, generation: UInt32) {
        if generation == zeroed {
            p.initializeMemory(as: UInt8.self, repeating: 0, count: count)
            return
        }
        let s = seed(offset: offset, generation: generation)
        let w = p.assumingMemoryBound(to: UInt64.self)
        for i in 0..<(count / 8) { w[i] = s &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03 }
    }

    /// Whether `count` bytes at `p` hold the pattern of (offset, gen).
    @inline(__always) static func check(_ p: UnsafeRawPointer, count: Int, offset: UInt64, generation: UInt32) -> Bool {
        let w = p.assumingMemoryBound(to: UInt64.self)
        if generation == zeroed {
            for i in 0..<(count / 8) where w[i] != 0 { return false }
            return true
        }
        let s = seed(offset: offset, generation: generation)
        for i in 0..<(count / 8) where w[i] != s &+ UInt64(i) &* 0xD1B5_4A32_D192_ED03 { return false }
        return true
    }
}
