// Byte-level access to a chain: its readable bytes and its writable bytes are
// each one logical stream, whatever the descriptor boundaries (virtio 1.x
// §2.7.4 "Message Framing": a device must not assume a particular layout).

extension Chain {
    /// A sub-range of the readable or writable stream, iterated as host
    /// pieces without allocating. Valid until the chain is refilled.
    public struct Slice: Sequence, IteratorProtocol, @unchecked Sendable {
        // SAFETY (Sendable): a view on the chain's segments, used by the chain's owner.
        let segments: UnsafeBufferPointer<Segment>
        var index: Int
        var skip: UInt32
        var remaining: UInt32

        /// Bytes not yet iterated.
        public var remainingBytes: UInt32 { remaining }

        public mutating func next() -> Segment? {
            while remaining > 0, index < segments.count {
                var s = segments[index]
                index += 1
                if skip >= s.length { skip -= s.length; continue }
                // SAFETY: skip < s.length, so the advanced pointer stays inside the segment.
                s.hostPointer = s.hostPointer.advanced(by: Int(skip))
                s.guestAddr &+= UInt64(skip)
                s.length = Swift.min(s.length - skip, remaining)
                skip = 0
                remaining -= s.length
                return s
            }
            return nil
        }
    }

    /// The pieces of `length` bytes at `offset` in the readable (or writable)
    /// stream; nil if the stream is shorter than `offset + length`.
    public func slice(writable: Bool, offset: UInt32, length: UInt32) -> Slice? {
        let total = writable ? writableBytes : readableBytes
        guard offset <= total, length <= total - offset else { return nil }
        let segs = writable ? writableSegments : readableSegments
        return Slice(segments: segs, index: 0, skip: offset, remaining: length)
    }

    /// Copies `destination.count` bytes from the readable stream at `offset`.
    /// Returns false (copying nothing) if the stream is too short.
    public func copyReadable(from offset: UInt32, into destination: UnsafeMutableRawBufferPointer) -> Bool {
        guard destination.count <= Int(UInt32.max),
              var slice = slice(writable: false, offset: offset, length: UInt32(destination.count)) else { return false }
        var out = 0
        while let s = slice.next() {
            // SAFETY: `s` lies inside a guest region; `out + s.length <= destination.count`.
            destination.baseAddress!.advanced(by: out).copyMemory(from: s.hostPointer, byteCount: Int(s.length))
            out += Int(s.length)
        }
        return true
    }

    /// Copies `source` into the writable stream at `offset`. Returns false
    /// (copying nothing) if the stream is too short.
    public func copyToWritable(at offset: UInt32, from source: UnsafeRawBufferPointer) -> Bool {
        guard source.count <= Int(UInt32.max),
              var slice = slice(writable: true, offset: offset, length: UInt32(source.count)) else { return false }
        var from = 0
        while let s = slice.next() {
            // SAFETY: `s` lies inside a guest region; `from + s.length <= source.count`.
            s.hostPointer.copyMemory(from: source.baseAddress!.advanced(by: from), byteCount: Int(s.length))
            from += Int(s.length)
        }
        return true
    }

    /// Host pointer of byte `offset` of the writable stream, or nil.
    public func writableByte(at offset: UInt32) -> UnsafeMutableRawPointer? {
        guard var s = slice(writable: true, offset: offset, length: 1) else { return nil }
        return s.next()?.hostPointer
    }
}
