import VireoWire

/// Which connections make up each switch port. An initiator NIC with several
/// queue pairs connects each pair separately; pairs that send the same
/// `PortKey` are one port of the switch (one MAC-table identity, one flood
/// copy, one allow-list), and a frame for that port goes out on one of its
/// pairs, chosen by a flow hash so one flow keeps one pair (and its order),
/// with credits per pair: when the hashed pair has no credit the next pair
/// with credit takes the frame. A connection without a key is a port of its own.
///
/// Connections are identified by their slot in the network's table, ports by
/// a group number; both are below `capacity`. Joining and leaving happen when
/// connections come and go (may allocate); `pick` runs per frame (does not).
public struct PortGroups {
    public let capacity: Int
    /// Group of each slot (-1: none).
    private var groupOf: [Int]
    /// Slots of each group, in join order.
    private var members: [[Int]]
    private var keys: [PortKey?]

    public init(capacity: Int) {
        self.capacity = capacity
        groupOf = [Int](repeating: -1, count: capacity)
        members = [[Int]](repeating: [], count: capacity)
        keys = [PortKey?](repeating: nil, count: capacity)
    }

    /// Adds connection `slot`: to the live group with the same key, else to a
    /// new group. Returns the group and whether it is new (a new switch port).
    public mutating func join(slot: Int, key: PortKey?) -> (group: Int, isNew: Bool) {
        precondition(slot >= 0 && slot < capacity && groupOf[slot] < 0, "slot \(slot) already in a group")
        if let key, let g = keys.indices.first(where: { keys[$0] == key && !members[$0].isEmpty }) {
            members[g].append(slot)
            groupOf[slot] = g
            return (g, false)
        }
        // A slot is free, so a group is (groups ≤ slots in use).
        let g = members.indices.first { members[$0].isEmpty }!
        members[g] = [slot]
        keys[g] = key
        groupOf[slot] = g
        return (g, true)
    }

    /// Removes connection `slot`. Returns its group and whether the group is
    /// now empty (the switch port is gone), or nil if the slot was in none.
    @discardableResult
    public mutating func leave(slot: Int) -> (group: Int, isEmpty: Bool)? {
        guard slot >= 0, slot < capacity, groupOf[slot] >= 0 else { return nil }
        let g = groupOf[slot]
        groupOf[slot] = -1
        members[g].removeAll { $0 == slot }
        if members[g].isEmpty { keys[g] = nil }
        return (g, members[g].isEmpty)
    }

    /// The group (switch port) of connection `slot`, or -1.
    @inline(__always)
    public func group(ofSlot slot: Int) -> Int { slot >= 0 && slot < capacity ? groupOf[slot] : -1 }

    /// The connections of group `g`, in join order.
    @inline(__always)
    public func members(of g: Int) -> [Int] { g >= 0 && g < capacity ? members[g] : [] }

    /// The key group `g` was made for (nil: none, or an unkeyed connection).
    public func key(of g: Int) -> PortKey? { g >= 0 && g < capacity ? keys[g] : nil }

    /// The connection of group `g` a frame goes out on: the `hash`ed (asked
    /// only when the group has several members)
    /// member if `usable`, else the next usable one in order. `preferred` is
    /// the hashed member (where a drop is counted when none is usable); nil
    /// when the group has no member.
    @inline(__always)
    public func pick(group g: Int, hash: () -> UInt64, usable: (Int) -> Bool) -> (chosen: Int?, preferred: Int)? {
        guard g >= 0, g < capacity else { return nil }
        let m = members[g]
        let n = m.count
        if n == 0 { return nil }
        if n == 1 { return (usable(m[0]) ? m[0] : nil, m[0]) }
        let start = Int(truncatingIfNeeded: hash() % UInt64(n))
        for k in 0..<n {
            let s = m[(start + k) % n]
            if usable(s) { return (s, m[start]) }
        }
        return (nil, m[start])
    }

    /// A flow hash of a frame (virtio-net header + Ethernet frame, `count`
    /// bytes, already validated): the MAC pair, plus for untagged IPv4 the
    /// addresses and, for TCP/UDP first fragments, the ports. Symmetric in
    /// neither direction on purpose (each direction is spread on its own).
    @inline(__always)
    public static func flowHash(_ frame: UnsafeRawPointer, count: Int) -> UInt64 {
        let e = Wire.netHeaderSize
        func be16(_ o: Int) -> UInt64 { UInt64(frame.load(fromByteOffset: o, as: UInt8.self)) << 8 | UInt64(frame.load(fromByteOffset: o + 1, as: UInt8.self)) }
        func be32(_ o: Int) -> UInt64 { be16(o) << 16 | be16(o + 2) }
        // SAFETY: validated frames hold at least the 12-byte header and a 14-byte Ethernet header;
        // every later read is checked against `count`.
        var h = (be32(e) << 16 | be16(e + 4)) &* 0x9e37_79b9_7f4a_7c15
        h ^= (be32(e + 6) << 16 | be16(e + 10)) &* 0xc2b2_ae3d_27d4_eb4f
        let ip = e + 14
        if be16(e + 12) == 0x0800, count >= ip + 20 {
            let ihl = Int(frame.load(fromByteOffset: ip, as: UInt8.self) & 0x0f) * 4
            h ^= (be32(ip + 12) << 32 | be32(ip + 16)) &* 0x1656_67b1_9e37_79f9
            let proto = frame.load(fromByteOffset: ip + 9, as: UInt8.self)
            let fragment = be16(ip + 6) & 0x1fff
            if (proto == 6 || proto == 17), fragment == 0, ihl >= 20, count >= ip + ihl + 4 {
                h ^= be32(ip + ihl) &* 0x27d4_eb2f_1656_67c5
            }
        }
        return h ^ (h >> 29)
    }
}
