import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// What a `--verify` run left on the disk, for a reader that did not take part: each block
/// whose last write was acknowledged, and that write's generation (the block holds the
/// pattern of (offset, generation), `BlkVerifyTable.fill`). Written after the read-back and
/// a FLUSH on every queue; `check(image:)` reads a raw copy of the disk (`rbd export`, the
/// export's file) and checks each block against it.
///
/// Text, one line per block: `vireo-written-map block_size=N` first, then `BLOCK GENERATION`.
public struct BlkWrittenMap: Equatable, Sendable {
    public var blockSize: Int
    /// (block, generation), in block order.
    public var entries: [(block: Int, generation: UInt32)]

    public static func == (a: Self, b: Self) -> Bool {
        a.blockSize == b.blockSize && a.entries.elementsEqual(b.entries) { $0.block == $1.block && $0.generation == $1.generation }
    }

    init(table: BlkVerifyTable, blockSize: Int) {
        self.blockSize = blockSize
        entries = (0..<table.blocks).compactMap { b in
            let g = table[b] & ~BlkVerifyTable.busy
            return g == 0 ? nil : (b, g)
        }
    }

    public init(blockSize: Int, entries: [(block: Int, generation: UInt32)]) {
        self.blockSize = blockSize
        self.entries = entries
    }

    /// A problem reading or writing a map or an image.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public var text: String {
        "vireo-written-map block_size=\(blockSize)\n" + entries.map { "\($0.block) \($0.generation)\n" }.joined()
    }

    public func write(to path: String) throws(Failure) {
        // A map cut short would let check-image pass on fewer blocks: every failure is one.
        guard let f = fopen(path, "w") else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
        let put = fputs(text, f)
        guard fclose(f) == 0, put >= 0 else { throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))") }
    }

    /// Parses `text` (as `text` writes it).
    public init(parsing text: String) throws(Failure) {
        var lines = text.split(separator: "\n")
        guard let head = lines.first, head.hasPrefix("vireo-written-map block_size="),
              let bs = Int(head.dropFirst("vireo-written-map block_size=".count)), bs > 0, bs % 8 == 0 else {
            throw Failure(description: "not a written map (first line 'vireo-written-map block_size=N')")
        }
        lines.removeFirst()
        var out: [(Int, UInt32)] = []
        for (i, l) in lines.enumerated() {
            let f = l.split(separator: " ")
            guard f.count == 2, let b = Int(f[0]), b >= 0, let g = UInt32(f[1]), g != 0 else {
                throw Failure(description: "line \(i + 2): '\(l)' is not 'BLOCK GENERATION'")
            }
            out.append((b, g))
        }
        blockSize = bs
        entries = out
    }

    /// What `check(image:)` found.
    public struct Check: Sendable {
        public var checked = 0
        public var mismatches = 0
        public var firstMismatchBlock: Int?
    }

    /// Reads each listed block of the raw disk image at `path` and checks its pattern.
    public func check(image path: String) throws(Failure) -> Check {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        var c = Check()
        for (b, g) in entries {
            let offset = UInt64(b) * UInt64(blockSize)
            let n = pread(fd, buffer, blockSize, off_t(offset))
            guard n == blockSize else { throw Failure(description: "\(path): short read of block \(b) (offset \(offset))") }
            c.checked += 1
            if !BlkVerifyTable.check(buffer, count: blockSize, offset: offset, generation: g) {
                c.mismatches += 1
                if c.firstMismatchBlock == nil { c.firstMismatchBlock = b }
            }
        }
        return c
    }
}
