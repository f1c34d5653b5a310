import CVireoSys

/// A 64-bit checksum of `buffer` (FNV-1a over words). For verifying moved data, not for security.
public func checksum64(_ buffer: UnsafeRawBufferPointer) -> UInt64 {
    vireo_checksum64(buffer.baseAddress, buffer.count)
}

/// Fills `buffer` with a deterministic pseudo-random pattern derived from `seed`.
public func fillPattern(_ buffer: UnsafeMutableRawBufferPointer, seed: UInt64) {
    vireo_fill_pattern(buffer.baseAddress, buffer.count, seed)
}
