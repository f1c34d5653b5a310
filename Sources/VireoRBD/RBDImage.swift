import CVireoRBD
import VireoSys

/// An open RBD image and its asynchronous I/O.
///
/// Operations are started on one thread (the export's worker) and complete into
/// librbd's per-image event queue: librbd writes to the eventfd given to
/// `notify(eventFD:)` and the worker takes them with `poll(into:)` on its own thread,
/// so a completion reaches the request that started it without a thread hop of
/// Vireo's or an allocation of Vireo's (librbd allocates its own completion object per
/// operation). Each operation carries a 64-bit tag that comes back with its result.
/// Closed (after the caller has taken every completion) when the last owner lets go.
public final class RBDImage: @unchecked Sendable {
    // SAFETY: the handle is immutable after init; librbd is thread-safe for its calls,
    // and Vireo starts and polls one image's operations on one thread.
    let handle: OpaquePointer
    /// The connection it was opened on (kept open while the image is).
    public let connection: RadosConnection
    /// Which image, at which snapshot.
    public let spec: RBDImageSpec
    /// `pool/[namespace/]image[@snapshot]`.
    public var name: String { spec.description }
    /// Opened on a snapshot, or read-only: writes are refused by librbd.
    public let isReadOnly: Bool

    /// Opens `spec`'s image, at its snapshot (read-only) or the head.
    public init(connection: RadosConnection, spec: RBDImageSpec, readOnly: Bool) throws(SystemError) {
        self.connection = connection
        self.spec = spec
        isReadOnly = readOnly || spec.snapshot != nil
        var out: OpaquePointer?
        var failed: UnsafePointer<CChar>?
        let r = vireo_rbd_open(connection.handle, spec.pool, spec.namespace, spec.image, spec.snapshot, readOnly ? 1 : 0,
                               &out, &failed)
        guard r == 0, let out else {
            throw SystemError(call: "\(failed.map { String(cString: $0) } ?? "rbd_open")(\(spec))", errno: -r)
        }
        handle = out
    }

    /// Closes the image, unless its connection was fenced: librbd never ends the writes of a
    /// blocklisted client that waited for the lock it lost, and `rbd_close` waits for them
    /// for ever (a target stopping would hang), so a fenced image is left open.
    deinit {
        if !connection.isFenced { vireo_rbd_close(handle) }
    }

    /// The image's size now (bytes).
    public func size() throws(SystemError) -> UInt64 {
        var s: UInt64 = 0
        let r = vireo_rbd_size(handle, &s)
        guard r == 0 else { throw SystemError(call: "rbd_get_size(\(name))", errno: -r) }
        return s
    }

    /// Whether the image has RBD's exclusive-lock feature (one client writes at a time; a
    /// dead owner's lock is broken and the owner blocklisted before another writes).
    public func hasExclusiveLock() throws(SystemError) -> Bool {
        let r = vireo_rbd_has_exclusive_lock(handle)
        guard r >= 0 else { throw SystemError(call: "rbd_get_features(\(name))", errno: -r) }
        return r == 1
    }

    /// Completions are announced on `eventFD` (an eventfd) from now on. Once per image.
    public func notify(eventFD: Int32) throws(SystemError) {
        let r = vireo_rbd_set_notification(handle, eventFD)
        guard r == 0 else { throw SystemError(call: "rbd_set_image_notification(\(name))", errno: -r) }
    }

    /// librbd signals `eventFD` when the image's header changes (a resize, a snapshot), from
    /// its own thread. Once per image.
    public func watchUpdates(eventFD: Int32) throws(SystemError) {
        let r = vireo_rbd_watch_updates(handle, eventFD)
        guard r == 0 else { throw SystemError(call: "rbd_update_watch(\(name))", errno: -r) }
    }

    /// Whether the header changed since the last call (`watchUpdates`); clears it.
    public func takeUpdated() -> Bool { vireo_rbd_take_updated(handle) != 0 }

    // MARK: asynchronous operations (0, or a negative errno when librbd refused to start it)

    /// Reads `count` bytes at `offset` into `buffer`, which must stay valid until the completion.
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawPointer, count: Int, offset: UInt64, tag: UInt64) -> Int32 {
        vireo_rbd_aio_read(handle, buffer, count, offset, tag)
    }

    /// Writes `count` bytes at `offset` from `buffer`, which must stay valid until the completion.
    @inline(__always)
    public func write(from buffer: UnsafeRawPointer, count: Int, offset: UInt64, tag: UInt64) -> Int32 {
        vireo_rbd_aio_write(handle, buffer, count, offset, tag)
    }

    /// Completes when every write acknowledged before it is durable on the OSDs.
    @inline(__always)
    public func flush(tag: UInt64) -> Int32 { vireo_rbd_aio_flush(handle, tag) }

    @inline(__always)
    public func discard(offset: UInt64, count: UInt64, tag: UInt64) -> Int32 {
        vireo_rbd_aio_discard(handle, offset, count, tag)
    }

    @inline(__always)
    public func writeZeroes(offset: UInt64, count: UInt64, tag: UInt64) -> Int32 {
        vireo_rbd_aio_write_zeroes(handle, offset, count, tag)
    }

    /// Takes up to `buffer.capacity` completed operations into `buffer`; returns how many
    /// (0 on a librbd error, which it returns only for an image without notification).
    @inline(__always)
    public func poll(into buffer: RBDCompletions) -> Int {
        let n = vireo_rbd_poll(handle, buffer.tags, buffer.results, Int32(buffer.capacity))
        return n > 0 ? Int(n) : 0
    }
}
