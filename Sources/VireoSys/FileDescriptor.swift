import CVireoSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An owned file descriptor: closed exactly once, when the owner is consumed
/// or goes out of scope.
public struct FileDescriptor: ~Copyable, Sendable {
    /// The raw descriptor. Valid while this value is alive; do not close it.
    public let rawValue: Int32

    /// Takes ownership of `rawValue`.
    public init(owning rawValue: Int32) {
        precondition(rawValue >= 0, "FileDescriptor(owning:) needs a valid descriptor")
        self.rawValue = rawValue
    }

    deinit { _ = Glibc.close(rawValue) }

    /// Closes now. `close` errors are not actionable (the fd is gone either way).
    public consuming func close() {}

    /// Gives up ownership without closing (e.g. to hand the fd to another owner).
    public consuming func release() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    /// A new owned descriptor for the same open file (`fcntl(F_DUPFD_CLOEXEC)`).
    public func duplicate() throws(SystemError) -> FileDescriptor {
        let fd = try syscallRetrying("fcntl(F_DUPFD_CLOEXEC)") { fcntl(rawValue, F_DUPFD_CLOEXEC, 0) }
        return FileDescriptor(owning: fd)
    }

    /// Sets or clears O_NONBLOCK.
    public func setNonBlocking(_ on: Bool = true) throws(SystemError) {
        let flags = try syscallRetrying("fcntl(F_GETFL)") { fcntl(rawValue, F_GETFL) }
        let new = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK
        if new != flags {
            try syscallRetrying("fcntl(F_SETFL)") { fcntl(rawValue, F_SETFL, new) }
        }
    }

    /// `read(2)`; returns the byte count, 0 at end of file, `nil` on EAGAIN.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int? {
        do {
            return try syscallRetrying("read") { Glibc.read(rawValue, buffer.baseAddress, buffer.count) }
        } catch where error.errno == EAGAIN {
            return nil
        }
    }

    /// `write(2)`; returns the byte count, `nil` on EAGAIN.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(SystemError) -> Int? {
        do {
            return try syscallRetrying("write") { Glibc.write(rawValue, buffer.baseAddress, buffer.count) }
        } catch where error.errno == EAGAIN {
            return nil
        }
    }

    /// `fstat(2)`.
    private func status() throws(SystemError) -> stat {
        var st = stat()
        try syscallRetrying("fstat") { fstat(rawValue, &st) }
        return st
    }

    /// Size of the open file (`fstat`).
    public func size() throws(SystemError) -> Int {
        Int(try status().st_size)
    }

    /// Whether the file backs a shared mapping of its first `byteCount`
    /// bytes: a regular file (memfd, tmpfs, hugetlbfs) must be at least that
    /// long, since touching a mapped page past its end raises SIGBUS. Other
    /// kinds (a DAX character device) report no size and are not checked.
    public func backsMapping(of byteCount: Int) throws(SystemError) -> Bool {
        let st = try status()
        return st.st_mode & S_IFMT != S_IFREG || Int(st.st_size) >= byteCount
    }

    /// `ftruncate(2)`.
    public func truncate(to size: Int) throws(SystemError) {
        try syscallRetrying("ftruncate") { ftruncate(rawValue, off_t(size)) }
    }

    /// An anonymous memory file (`memfd_create`), e.g. test "guest memory".
    public static func memfd(name: String, size: Int) throws(SystemError) -> FileDescriptor {
        let raw = try syscallRetrying("memfd_create") { vireo_memfd_create(name, 1) }
        let fd = FileDescriptor(owning: raw)
        try fd.truncate(to: size)
        return fd
    }

    /// `open(2)` with O_CLOEXEC added.
    public static func open(
        _ path: String, flags: Int32, mode: mode_t = 0o644
    ) throws(SystemError) -> FileDescriptor {
        let raw = try syscallRetrying("open") { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return FileDescriptor(owning: raw)
    }
}
