import VireoFabric

/// The connections one target thread serves, by slot: the slot and a
/// generation go into every work-request id (`WorkID`), so a completion that
/// arrives after its connection left (and its slot was reused) is recognised
/// and ignored. Allocated once; inserting and removing allocate nothing.
public struct ConnectionTable<Item: AnyObject> {
    private var slots: [Item?]
    private var generations: [UInt16]

    /// A table of `capacity` slots (at most 65536: the id's queue field is 16 bits).
    public init(capacity: Int) {
        precondition(capacity > 0 && capacity <= 1 << 16, "a connection table holds 1-65536 slots")
        slots = [Item?](repeating: nil, count: capacity)
        generations = [UInt16](repeating: 0, count: capacity)
    }

    public var capacity: Int { slots.count }

    /// The item in `slot`, if any.
    @inline(__always)
    public subscript(slot: Int) -> Item? { slot >= 0 && slot < slots.count ? slots[slot] : nil }

    /// The item a work-request id (or io_uring user data) names, when its slot still
    /// holds the same generation.
    @inline(__always)
    public func item(for id: UInt64) -> Item? {
        let slot = WorkID.queue(id)
        guard slot < slots.count, let item = slots[slot], generations[slot] == WorkID.generation(id) else { return nil }
        return item
    }

    /// Puts `item` in the first free slot under a new generation; nil when full.
    public mutating func insert(_ item: Item) -> (slot: Int, generation: UInt16)? {
        guard let slot = slots.firstIndex(where: { $0 == nil }) else { return nil }
        slots[slot] = item
        generations[slot] &+= 1
        return (slot, generations[slot])
    }

    /// Empties `slot`; completions still naming it are ignored from now on.
    public mutating func remove(at slot: Int) {
        slots[slot] = nil
        generations[slot] &+= 1
    }

    /// Every item still in the table; the table is emptied.
    public mutating func removeAll() -> [Item] {
        var left: [Item] = []
        for slot in slots.indices {
            if let item = slots[slot] { left.append(item) }
            remove(at: slot)
        }
        return left
    }

    /// Whether `item` is in `slot`.
    public func holds(_ item: Item, at slot: Int) -> Bool { self[slot] === item }

    /// The occupied slots and their items, in slot order.
    public var occupied: some Sequence<(slot: Int, item: Item)> {
        slots.indices.lazy.compactMap { i in slots[i].map { (i, $0) } }
    }
}
