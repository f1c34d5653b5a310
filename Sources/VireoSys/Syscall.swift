#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// One wrapper per C calling convention. Each reads errno immediately after the
// call and retries EINTR where the call is restartable. No errno traps: an
// EBADF or EFAULT can come from a descriptor a peer sent (an O_PATH fd, a
// read-only "eventfd" over SCM_RIGHTS), and that is input, not a bug; the
// caller fails that peer's device or connection with the typed error.

/// Convention "-1 and errno" (most syscalls: `int` results, and `ssize_t` ones
/// such as read, write, recvmsg). Retries EINTR.
@inline(never)
@discardableResult
public func syscallRetrying<R: FixedWidthInteger & SignedInteger>(
    _ call: StaticString,
    _ body: () -> R
) throws(SystemError) -> R {
    while true {
        let rc = body()
        if rc != -1 { return rc }
        let err = errno
        if err == EINTR { continue }
        throw SystemError(call: "\(call)", errno: err)
    }
}

/// Convention "0 on success, otherwise the error number is the return value"
/// (pthread_*, ibv_post_send, ibv_modify_qp, ibv_req_notify_cq...).
@inline(never)
public func zeroOrErrno(_ call: StaticString, _ body: () -> Int32) throws(SystemError) {
    let rc = body()
    if rc == 0 { return }
    // Some verbs return -1 and set errno instead of returning it; accept both.
    let err = rc == -1 ? (errno != 0 ? errno : EIO) : (rc < 0 ? -rc : rc)
    throw SystemError(call: "\(call)", errno: err)
}

/// Convention "0 on success, -1 and errno" without EINTR retry (rdma_cm calls, ibv_destroy_*).
@inline(never)
public func zeroOrMinusOne(_ call: StaticString, _ body: () -> Int32) throws(SystemError) {
    let rc = body()
    if rc == 0 { return }
    let err = errno
    throw SystemError(call: "\(call)", errno: err == 0 ? EIO : err)
}

/// Convention "a count, or a negative error number" (ibv_poll_cq).
@inline(__always)
public func countOrNegativeErrno(_ call: StaticString, _ body: () -> Int32) throws(SystemError) -> Int {
    let n = body()
    if n >= 0 { return Int(n) }
    throw SystemError(call: "\(call)", errno: n == Int32.min ? EIO : -n)
}

/// Convention "0 when something was taken, else -1 and errno, EAGAIN meaning
/// nothing is there" on a non-blocking channel (ibv_get_cq_event,
/// rdma_get_cm_event). True: taken; false: nothing yet (EAGAIN, EWOULDBLOCK, EINTR).
@inline(never)
public func takenOrWouldBlock(_ call: StaticString, _ body: () -> Int32) throws(SystemError) -> Bool {
    if body() == 0 { return true }
    let err = errno
    if err == EAGAIN || err == EWOULDBLOCK || err == EINTR { return false }
    throw SystemError(call: "\(call)", errno: err == 0 ? EIO : err)
}

/// Convention "NULL and errno" (ibv_alloc_pd, ibv_reg_mr, rdma_create_event_channel...).
@inline(never)
public func nonNull<T>(_ call: StaticString, _ body: () -> T?) throws(SystemError) -> T {
    if let value = body() { return value }
    let err = errno
    throw SystemError(call: "\(call)", errno: err == 0 ? ENOMEM : err)
}
