import CVireoUring

/// The `fallocate(2)` modes the target uses (FALLOC_FL_* bits).
public struct FallocateMode: OptionSet, Sendable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// Deallocate the range (reads return zeroes); needs `keepSize`.
    public static let punchHole = FallocateMode(rawValue: vireo_falloc_punch_hole())
    /// Zero the range (the filesystem may convert it to unwritten extents).
    public static let zeroRange = FallocateMode(rawValue: vireo_falloc_zero_range())
    /// Do not change the file's size.
    public static let keepSize = FallocateMode(rawValue: vireo_falloc_keep_size())
}
