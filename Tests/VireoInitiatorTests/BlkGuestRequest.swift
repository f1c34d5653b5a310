import Virtio
import VirtioDriver

/// A virtio-blk request as a guest driver makes one: header, optional data
/// (readable for OUT, writable for IN), status byte, added to a split ring.
enum BlkGuestRequest {
    /// Adds the request to `queue` in `memory`; returns the data and status guest addresses.
    /// `at`: where the data buffer goes (default: allocated, 512-aligned).
    @discardableResult
    static func add(to queue: SplitDriverQueue, in memory: DriverMemory, type: VirtioBlk.RequestType, sector: UInt64,
                    data: [UInt8] = [], readLength: Int = 0, at gpa: UInt64? = nil) -> (data: UInt64, status: UInt64) {
        let h = memory.allocate(16, alignment: 16)
        memory.write(VirtioBlk.RequestHeader(type: type.rawValue, sector: sector).bytes, at: h)
        let s = memory.allocate(1, alignment: 1)
        memory.fill(s, count: 1, byte: 0xee)
        var readable = [DriverBuffer(gpa: h, length: 16)]
        var writable: [DriverBuffer] = []
        var d: UInt64 = 0
        if !data.isEmpty {
            d = gpa ?? memory.allocate(data.count, alignment: 512)
            memory.write(data, at: d)
            readable.append(DriverBuffer(gpa: d, length: UInt32(data.count)))
        } else if readLength > 0 {
            d = gpa ?? memory.allocate(readLength, alignment: 512)
            memory.fill(d, count: readLength, byte: 0x5a)
            writable.append(DriverBuffer(gpa: d, length: UInt32(readLength)))
        }
        writable.append(DriverBuffer(gpa: s, length: 1))
        _ = queue.add(readable: readable, writable: writable)!
        return (d, s)
    }
}
