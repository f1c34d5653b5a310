import CVireoSys
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A connected or listening stream socket: `AF_UNIX` (vhost-user's transport, with
/// SCM_RIGHTS descriptor passing; the control socket) or TCP (`StreamSocket+TCP`: the
/// metrics listener). `UnixSocket` is its older name.
public struct StreamSocket: ~Copyable, Sendable {
    /// The owned descriptor.
    public let fd: FileDescriptor

    /// Adopts an already-open socket.
    public init(fd: consuming FileDescriptor) { self.fd = fd }

    public var rawValue: Int32 { fd.rawValue }

    /// Binds and listens on `path`. A stale socket file at `path` is removed
    /// first; `mode` (e.g. 0o660) is applied with `chmod` when given.
    public static func listen(
        path: String, backlog: Int32 = 4, mode: mode_t? = nil
    ) throws(SystemError) -> UnixSocket {
        removeSocketFile(path: path)
        let raw = try syscallRetrying("bind/listen(AF_UNIX)") { vireo_unix_listen(path, backlog) }
        let sock = UnixSocket(fd: FileDescriptor(owning: raw))
        if let mode {
            try syscallRetrying("chmod") { chmod(path, mode) }
        }
        return sock
    }

    /// Removes the socket file at `path` if it is a socket (never another file type).
    public static func removeSocketFile(path: String) {
        var st = stat()
        if lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFSOCK {
            _ = unlink(path)
        }
    }

    /// Connects to the socket at `path`.
    public static func connect(path: String) throws(SystemError) -> UnixSocket {
        let raw = try syscallRetrying("connect(AF_UNIX)") { vireo_unix_connect(path) }
        return UnixSocket(fd: FileDescriptor(owning: raw))
    }

    /// A connected pair (`socketpair(AF_UNIX, SOCK_STREAM)`); take the ends
    /// with `pair.first.take()!` / `pair.second.take()!`.
    public static func pair() throws(SystemError) -> UnixSocketPair {
        var fds: (Int32, Int32) = (-1, -1)
        // SAFETY: `fds` is two contiguous Int32s, what socketpair fills.
        try withUnsafeMutableBytes(of: &fds) { (buf) throws(SystemError) in
            let p = buf.baseAddress!.assumingMemoryBound(to: Int32.self)
            try syscallRetrying("socketpair") { vireo_socketpair(p) }
        }
        return UnixSocketPair(
            first: UnixSocket(fd: FileDescriptor(owning: fds.0)),
            second: UnixSocket(fd: FileDescriptor(owning: fds.1)))
    }

    /// Accepts one connection (blocking unless the socket is non-blocking;
    /// `nil` on EAGAIN).
    public func accept() throws(SystemError) -> UnixSocket? {
        do {
            let raw = try syscallRetrying("accept4") { vireo_accept(fd.rawValue) }
            return UnixSocket(fd: FileDescriptor(owning: raw))
        } catch where error.errno == EAGAIN {
            return nil
        }
    }

    /// Sends all of `bytes`, with `fds` attached to the first chunk.
    public func send(_ bytes: UnsafeRawBufferPointer, fds: [Int32] = []) throws(SystemError) {
        var offset = 0
        var attach = fds
        repeat {
            let chunk = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            // SAFETY: `chunk` and `attach` are valid for the duration of the call.
            let n = try attach.withUnsafeBufferPointer { (f) throws(SystemError) -> Int in
                try syscallRetrying("sendmsg") {
                    vireo_sendmsg_fds(fd.rawValue, chunk.baseAddress, chunk.count, f.baseAddress, Int32(f.count))
                }
            }
            attach = []
            offset += n
        } while offset < bytes.count
    }

    /// Receives exactly `buffer.count` bytes (fewer only at end of stream),
    /// collecting up to `maxFDs` descriptors. Descriptors beyond that are
    /// closed and reported through `ReceivedFileDescriptors.truncated`.
    ///
    /// With `partialTimeoutMilliseconds`, a message that has begun (a byte of
    /// it arrived, or `started`) must be complete within that time, or this
    /// throws `ETIMEDOUT`: a peer that sends half a message cannot hold the
    /// reading thread (and the socket) forever. Waiting for a message to
    /// begin is not bounded (an idle peer is a normal peer).
    public func receive(
        into buffer: UnsafeMutableRawBufferPointer, maxFDs: Int, appendingTo received: ReceivedFileDescriptors,
        partialTimeoutMilliseconds: Int32? = nil, started: Bool = false
    ) throws(SystemError) -> Int {
        var offset = 0
        var fdBuf: [Int32] = Array(repeating: -1, count: max(1, maxFDs))
        var deadline: UInt64 = 0
        while offset < buffer.count {
            if let limit = partialTimeoutMilliseconds, offset > 0 || started {
                if deadline == 0 { deadline = monotonicNanoseconds() &+ UInt64(max(limit, 0)) * 1_000_000 }
                try waitReadable(until: deadline, limit: limit, have: offset, want: buffer.count)
            }
            let chunk = UnsafeMutableRawBufferPointer(rebasing: buffer[offset...])
            var nfds: Int32 = 0
            var truncated: Int32 = 0
            let room = max(0, maxFDs - received.count)
            // SAFETY: `chunk` and `fdBuf` (capacity >= room) outlive the call.
            let n = try fdBuf.withUnsafeMutableBufferPointer { (f) throws(SystemError) -> Int in
                try syscallRetrying("recvmsg") {
                    vireo_recvmsg_fds(fd.rawValue, chunk.baseAddress, chunk.count, f.baseAddress, Int32(room), &nfds, &truncated)
                }
            }
            for i in 0..<Int(nfds) { received.append(fdBuf[i]) }
            if truncated != 0 { received.truncated = true }
            if n == 0 { break }
            offset += n
        }
        return offset
    }

    /// Waits until the socket is readable or `deadline` (monotonic ns) passes.
    private func waitReadable(until deadline: UInt64, limit: Int32, have: Int, want: Int) throws(SystemError) {
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else {
                throw SystemError(call: "recvmsg: message incomplete after \(limit) ms (\(have) of \(want) bytes)", errno: ETIMEDOUT)
            }
            var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
            let ms = Int32(clamping: (deadline - now) / 1_000_000 + 1)
            let n = try syscallRetrying("poll") { Glibc.poll(&p, 1, ms) }
            if n > 0 { return }
        }
    }

    /// Reads what is available now, without waiting (one `recv`, `MSG_DONTWAIT`): the byte
    /// count, 0 at end of stream, nil when nothing is there yet.
    public func receiveAvailable(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int? {
        do {
            return try syscallRetrying("recv") { Glibc.recv(fd.rawValue, buffer.baseAddress, buffer.count, Int32(MSG_DONTWAIT)) }
        } catch where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return nil
        }
    }

    /// Sends what the socket takes now, without waiting (one `send`, `MSG_DONTWAIT`, no
    /// SIGPIPE): the byte count, or nil when its buffer is full.
    public func sendAvailable(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> Int? {
        do {
            return try syscallRetrying("send") {
                Glibc.send(fd.rawValue, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL))
            }
        } catch where error.errno == EAGAIN || error.errno == EWOULDBLOCK {
            return nil
        }
    }

    /// Sends all of `bytes` by `deadline` (monotonic nanoseconds) without ever blocking past
    /// it, however the peer paces its reads; ETIMEDOUT when it has not taken them all by then.
    public func send(_ bytes: [UInt8], by deadline: UInt64) throws(SystemError) {
        var sent = 0
        while sent < bytes.count {
            var failure: SystemError?
            let n = bytes.withUnsafeBytes { b -> Int? in
                do throws(SystemError) { return try sendAvailable(UnsafeRawBufferPointer(rebasing: b[sent...])) } catch {
                    failure = error
                    return nil
                }
            }
            if let failure { throw failure }
            if let n {
                sent += n
                continue
            }
            let now = monotonicNanoseconds()
            guard now < deadline else {
                throw SystemError(call: "send: the peer took \(sent) of \(bytes.count) bytes in time", errno: ETIMEDOUT)
            }
            var p = pollfd(fd: fd.rawValue, events: Int16(POLLOUT), revents: 0)
            _ = Glibc.poll(&p, 1, Int32(clamping: (deadline - now) / 1_000_000 + 1))
        }
    }

    /// Sends all of `bytes` (no descriptors).
    public func send(_ bytes: [UInt8]) throws(SystemError) {
        var failure: SystemError?
        bytes.withUnsafeBytes { b in
            do throws(SystemError) { try send(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// `receiveAvailable(into:)` into the start of `buffer`.
    public func receiveAvailable(into buffer: inout [UInt8]) throws(SystemError) -> Int? {
        var failure: SystemError?
        let n = buffer.withUnsafeMutableBytes { b -> Int? in
            do throws(SystemError) { return try receiveAvailable(into: b) } catch {
                failure = error
                return nil
            }
        }
        if let failure { throw failure }
        return n
    }

    /// Bounds how long a `send` may block on a peer that does not read (`SO_SNDTIMEO`): past
    /// it, `send` throws EAGAIN.
    public func setSendTimeout(milliseconds: Int) throws(SystemError) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        try zeroOrMinusOne("setsockopt(SO_SNDTIMEO)") {
            setsockopt(fd.rawValue, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
    }

    /// `shutdown(SHUT_RDWR)`: wakes a thread blocked in `receive` on this socket.
    public func shutdown() {
        _ = Glibc.shutdown(fd.rawValue, Int32(SHUT_RDWR))
    }
}

/// A class that owns a `StreamSocket`, so an optional property or a shared reference can
/// hold one (a server's listening socket); the socket closes when the owner goes.
public final class OwnedSocket: Sendable {
    public let socket: StreamSocket
    public init(_ s: consuming StreamSocket) { socket = s }
}

/// The AF_UNIX constructors' name for `StreamSocket`.
public typealias UnixSocket = StreamSocket

/// The two ends of `UnixSocket.pair()`.
public struct UnixSocketPair: ~Copyable, Sendable {
    public var first: UnixSocket?
    public var second: UnixSocket?
}

/// Descriptors received over SCM_RIGHTS. Any not taken are closed on deinit,
/// so a surplus descriptor from a peer can never leak.
public final class ReceivedFileDescriptors: @unchecked Sendable {
    private var fds: [Int32] = []
    /// Set when the peer sent more descriptors than the receiver accepted
    /// (the surplus was closed).
    public var truncated = false

    public init() {}

    /// How many descriptors are held (taken or not).
    public var count: Int { fds.count }

    /// Adds `fd` (owned from now on) as if it had arrived with a message;
    /// `receive` uses it, and so do tests that feed a vhost-user session
    /// without a socket (`VhostUserSession.step`).
    package func append(_ fd: Int32) { fds.append(fd) }

    /// Takes ownership of descriptor `index`; `nil` if out of range or already taken.
    public func take(_ index: Int) -> FileDescriptor? {
        guard index >= 0, index < fds.count, fds[index] >= 0 else { return nil }
        let fd = fds[index]
        fds[index] = -1
        return FileDescriptor(owning: fd)
    }

    /// Closes every descriptor not yet taken.
    public func closeAll() {
        for i in fds.indices where fds[i] >= 0 {
            _ = Glibc.close(fds[i])
            fds[i] = -1
        }
    }

    deinit { closeAll() }
}
