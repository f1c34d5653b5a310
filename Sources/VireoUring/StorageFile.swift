import CVireoUring
import VireoSys
#if canImport(Glibc)
import Glibc
#endif

/// The Linux storage calls a block export needs besides io_uring: direct I/O,
/// a block device's size, a synchronous `fallocate`.
public enum StorageFile {
    /// `O_DIRECT` (Glibc's Swift module does not export it).
    public static var directIO: Int32 { vireo_o_direct() }

    /// `ioctl(BLKGETSIZE64)`: a block device's size in bytes.
    public static func blockDeviceSize(_ fd: Int32) throws(SystemError) -> UInt64 {
        var bytes: UInt64 = 0
        if vireo_blkgetsize64(fd, &bytes) != 0 { throw SystemError(call: "ioctl(BLKGETSIZE64)", errno: errno) }
        return bytes
    }

    /// `fallocate(2)`, synchronously (tests and tools; the data path goes through `IOUring`).
    public static func fallocate(_ fd: Int32, mode: FallocateMode, offset: UInt64, length: UInt64) throws(SystemError) {
        if vireo_fallocate(fd, mode.rawValue, offset, length) != 0 { throw SystemError(call: "fallocate", errno: errno) }
    }
}
