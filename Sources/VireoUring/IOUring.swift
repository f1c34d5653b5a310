import CVireoUring
import VireoSys

/// One io_uring owned by one worker thread, with an eventfd registered so the
/// worker can sleep on it next to its completion channel.
///
/// Preparing only queues a submission entry; `submit()` hands every queued
/// entry to the kernel with one syscall. Nothing is allocated per operation.
public final class IOUring: @unchecked Sendable {
    // SAFETY: used by exactly one thread (its worker); Sendable only to hand it over at start.
    private let ring: OpaquePointer
    /// Signalled by the kernel when a completion is posted.
    public let eventFD: EventFD
    /// Submission queue entries.
    public let entries: Int
    /// Entries queued by a prep but not yet submitted.
    public private(set) var unsubmitted = 0

    /// Creates a ring of `entries` submission entries with a registered eventfd.
    public init(entries: Int) throws(SystemError) {
        var err: Int32 = 0
        guard let r = vireo_uring_create(UInt32(clamping: entries), &err) else {
            throw SystemError(call: "io_uring_queue_init", errno: err)
        }
        ring = r
        self.entries = entries
        do {
            eventFD = try EventFD()
        } catch {
            vireo_uring_destroy(r)
            throw error
        }
        let rc = vireo_uring_register_eventfd(r, eventFD.rawValue)
        if rc < 0 {
            vireo_uring_destroy(r)
            throw SystemError(call: "io_uring_register_eventfd", errno: -rc)
        }
    }

    deinit { vireo_uring_destroy(ring) }

    /// Queues a read of `count` bytes at `offset` into `buffer`, which lies inside fixed buffer
    /// `fixedBuffer` when one is given (READ_FIXED). False: the submission queue is full.
    @inline(__always)
    public func read(fd: Int32, into buffer: UnsafeMutableRawPointer, count: Int, offset: UInt64, fixedBuffer: Int? = nil,
                     userData: UInt64) -> Bool {
        queued(vireo_uring_prep_read(ring, fd, buffer, UInt32(count), offset, Int32(fixedBuffer ?? -1), userData))
    }

    /// Queues a write of `count` bytes from `buffer` at `offset`, which lies inside fixed buffer
    /// `fixedBuffer` when one is given (WRITE_FIXED). False: the submission queue is full.
    @inline(__always)
    public func write(fd: Int32, from buffer: UnsafeRawPointer, count: Int, offset: UInt64, fixedBuffer: Int? = nil,
                      userData: UInt64) -> Bool {
        queued(vireo_uring_prep_write(ring, fd, buffer, UInt32(count), offset, Int32(fixedBuffer ?? -1), userData))
    }

    /// Fixed-buffer slots (`registerFixedBufferSlots`), 0 when the kernel refused them.
    public private(set) var fixedBufferSlots = 0

    /// Registers a table of `count` empty fixed-buffer slots, filled by `setFixedBuffer`. A
    /// fixed buffer's pages are pinned once, not on every O_DIRECT read or write.
    public func registerFixedBufferSlots(_ count: Int) throws(SystemError) {
        let rc = vireo_uring_register_sparse_buffers(ring, UInt32(clamping: count))
        guard rc >= 0 else { throw SystemError(call: "io_uring_register_buffers_sparse", errno: -rc) }
        fixedBufferSlots = count
    }

    /// Sets fixed-buffer slot `index` to `buffer` (nil empties it).
    public func setFixedBuffer(_ index: Int, _ buffer: UnsafeMutableRawBufferPointer?) throws(SystemError) {
        precondition(index >= 0 && index < fixedBufferSlots, "fixed buffer slot out of range")
        let rc = vireo_uring_update_buffer(ring, UInt32(index), buffer?.baseAddress, buffer?.count ?? 0)
        guard rc >= 0 else { throw SystemError(call: "io_uring_register_buffers_update_tag", errno: -rc) }
    }

    /// Queues an fdatasync (`datasync`) or fsync. False: the submission queue is full.
    @inline(__always)
    public func fsync(fd: Int32, datasync: Bool = true, userData: UInt64) -> Bool {
        queued(vireo_uring_prep_fsync(ring, fd, datasync ? 1 : 0, userData))
    }

    /// Queues an fallocate with `mode`. False: the submission queue is full.
    @inline(__always)
    public func fallocate(fd: Int32, mode: FallocateMode, offset: UInt64, length: UInt64, userData: UInt64) -> Bool {
        queued(vireo_uring_prep_fallocate(ring, fd, mode.rawValue, offset, length, userData))
    }

    @inline(__always)
    private func queued(_ rc: Int32) -> Bool {
        if rc != 0 { return false }
        unsubmitted += 1
        return true
    }

    /// Submits every queued entry (no-op when none); returns whether it entered the kernel
    /// (something was queued).
    @inline(__always) @discardableResult
    public func submit() throws(SystemError) -> Bool {
        guard unsubmitted > 0 else { return false }
        while true {
            let rc = vireo_uring_submit(ring)
            if rc >= 0 { unsubmitted = 0; return true }
            if rc == -EINTR || rc == -EAGAIN || rc == -EBUSY { continue }
            throw SystemError(call: "io_uring_submit", errno: -rc)
        }
    }

    /// Takes one completion without blocking: `(userData, result)` where a
    /// negative result is `-errno`; nil when none is ready.
    @inline(__always)
    public func takeCompletion() -> (userData: UInt64, result: Int32)? {
        var ud: UInt64 = 0
        var res: Int32 = 0
        guard vireo_uring_take(ring, &ud, &res) == 1 else { return nil }
        return (ud, res)
    }

    /// Blocks until a completion is ready, then takes it (tests and tools, not the data path).
    public func waitCompletion() throws(SystemError) -> (userData: UInt64, result: Int32) {
        while true {
            if let c = takeCompletion() { return c }
            let rc = vireo_uring_wait(ring)
            if rc < 0 && rc != -EINTR && rc != -EAGAIN { throw SystemError(call: "io_uring_wait_cqe", errno: -rc) }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
