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

    /// What `/proc/self/fd/N` names for this descriptor (`anon_inode:[eventfd]`,
    /// `/dev/null`, ...); nil where /proc is not mounted.
    public func procLink() -> String? {
        var buf = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(rawValue)", &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Checks a descriptor a peer sent as an eventfd (vhost-user kick, call,
    /// err): open read-write, not `O_PATH`, and, where /proc tells, an
    /// eventfd. A peer's fd is input: this throws, never traps.
    public func checkPeerEventFD() throws(SystemError) {
        let flags = try syscallRetrying("fcntl(F_GETFL)") { fcntl(rawValue, F_GETFL) }
        // O_PATH (Linux 0o10000000): no read, write or fcntl(F_SETFL) works on it.
        guard flags & 0o10000000 == 0 else {
            throw SystemError(call: "peer eventfd check: an O_PATH descriptor", errno: EBADF)
        }
        guard flags & O_ACCMODE == O_RDWR else {
            let mode = flags & O_ACCMODE == O_RDONLY ? "read-only" : "write-only"
            throw SystemError(call: "peer eventfd check: \(mode) descriptor (\(procLink() ?? "?")), an eventfd is read-write", errno: EBADF)
        }
        if let link = procLink(), link != "anon_inode:[eventfd]" {
            throw SystemError(call: "peer eventfd check: not an eventfd (\(link))", errno: EINVAL)
        }
    }

    /// `fstat(2)`.
    private func status() throws(SystemError) -> stat {
        var st = stat()
        try syscallRetrying("fstat") { fstat(rawValue, &st) }
        return st
    }

    /// What `fstat(2)` says of the open file, as Swift values.
    public struct Status: Sendable, Equatable {
        /// A regular file (not a directory, device, FIFO or socket).
        public var isRegularFile: Bool
        /// The permission bits (`mode & 0o7777`).
        public var permissions: UInt32
        /// The owner's user id.
        public var owner: UInt32
        public var size: Int
        /// `st_dev` and `st_ino`: which file this is (a front-end's memfd
        /// keeps them while it lives; a new process's memfd differs).
        public var device: UInt64 = 0
        public var inode: UInt64 = 0
    }

    /// `fstat(2)`, as Swift values.
    public func fileStatus() throws(SystemError) -> Status {
        let st = try status()
        return Status(isRegularFile: st.st_mode & S_IFMT == S_IFREG, permissions: UInt32(st.st_mode & 0o7777),
                      owner: UInt32(st.st_uid), size: Int(st.st_size),
                      device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
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

    /// A memfd of `size` bytes sealed against shrinking and growing
    /// (`F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL`): memory this process
    /// shares with a peer (the inflight buffer) that the peer must not be
    /// able to truncate under our mapping.
    public static func sealedMemfd(name: String, size: Int) throws(SystemError) -> FileDescriptor {
        let raw = try syscallRetrying("memfd_create(MFD_ALLOW_SEALING)") { vireo_memfd_create_sealable(name) }
        let fd = FileDescriptor(owning: raw)
        try fd.truncate(to: size)
        try syscallRetrying("fcntl(F_ADD_SEALS)") { vireo_seal_size(fd.rawValue) }
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
