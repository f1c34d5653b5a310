import VireoWire

/// The L2 forwarding logic of one network, without any I/O: MAC learning with
/// aging, optional source allow-lists (the network's, and each port's), and
/// the delivery set of each frame.
/// Ports are small integers chosen by the owner. The clock is passed in
/// (monotonic nanoseconds), so tests drive aging directly.
///
/// Nothing here allocates per frame, and every frame costs O(1): the MAC
/// table's capacity is reserved up front; when it is full, expired entries
/// are swept at most once per `sweepIntervalNanoseconds` and otherwise new
/// addresses are simply not learned (counted: `unlearnedTableFull`); the
/// active port list has a fixed capacity.
///
/// Learned addresses stay with their port: a live address seen on another
/// port is a spoof (`.macConflict`), unless that port's allow-list names it
/// (a port may take over an address it is allowed to use, e.g. after a guest
/// moved). One port learns at most `macsPerPort` addresses (counted:
/// `unlearnedPortLimit`), so a port flooding random source addresses cannot
/// fill the table for the others.
///
/// Floods (broadcast, multicast, unknown unicast) cost one copy per other
/// port on the switch's one thread, so each ingress port may cause at most
/// `floodBudget` copies per `floodWindowNanoseconds`; a flood past that is
/// dropped whole (`.floodLimited`) and one sender cannot starve the others.
public struct PacketSwitch {
    struct Entry {
        var port: Int
        var lastSeen: UInt64
    }

    /// Learned entries older than this are ignored (and swept when the table fills).
    public let agingNanoseconds: UInt64
    public let tableCapacity: Int
    private var table: [MACAddress: Entry]
    private let allowed: Set<MACAddress>?
    /// Per-port allow-lists (indexed by port; nil: only the network's applies).
    private var portAllowed: [Set<MACAddress>?]
    /// Ports frames may be delivered to, in the order they were added.
    public private(set) var ports: [Int]
    public let maxPorts: Int
    /// Flood copies one ingress port may cause per window (at least one flood per window always passes).
    public let floodBudget: Int
    /// The flood budget's window.
    public static let floodWindowNanoseconds: UInt64 = 1_000_000
    /// Per ingress port: when its current flood window started, and the copies spent in it.
    private var floodWindowStart: [UInt64]
    private var floodSpent: [Int]
    /// Addresses one port may have learned at once.
    public let macsPerPort: Int
    /// Per port: addresses learned on it (expired ones included until swept).
    private var learnedOn: [Int]
    /// Ports with no per-port limit (an uplink bridging a whole LAN).
    private var unlimited: [Bool]
    /// A full table is swept at most this often.
    public let sweepIntervalNanoseconds: UInt64
    private var nextSweep: UInt64 = 0
    /// Sweeps of a full table so far.
    public private(set) var sweeps: UInt64 = 0
    /// New addresses not learned: the table was full of live entries.
    public private(set) var unlearnedTableFull: UInt64 = 0
    /// New addresses not learned: their port already had `macsPerPort`.
    public private(set) var unlearnedPortLimit: UInt64 = 0

    /// A switch for ports `0..<maxPorts`; see the type's notes for `floodBudget` (copies per port per millisecond).
    /// `macsPerPort` nil: a fair share of the table (capacity / ports), at least 16.
    public init(agingSeconds: Int, tableCapacity: Int = 4096, maxPorts: Int = 1024, allowed: [MACAddress]? = nil,
                floodBudget: Int = 1024, macsPerPort: Int? = nil) {
        agingNanoseconds = UInt64(max(agingSeconds, 1)).multipliedReportingOverflow(by: 1_000_000_000).partialValue
        self.tableCapacity = max(tableCapacity, 1)
        table = [:]
        table.reserveCapacity(self.tableCapacity)
        self.allowed = allowed.map(Set.init)
        self.maxPorts = maxPorts
        portAllowed = [Set<MACAddress>?](repeating: nil, count: maxPorts)
        self.floodBudget = max(floodBudget, 1)
        floodWindowStart = [UInt64](repeating: 0, count: maxPorts)
        floodSpent = [Int](repeating: 0, count: maxPorts)
        self.macsPerPort = max(macsPerPort ?? max(self.tableCapacity / max(maxPorts, 1), 16), 1)
        learnedOn = [Int](repeating: 0, count: maxPorts)
        unlimited = [Bool](repeating: false, count: maxPorts)
        sweepIntervalNanoseconds = max(agingNanoseconds / 8, 1_000_000_000)
        ports = []
        ports.reserveCapacity(maxPorts)
    }

    /// Learned entries (including expired ones not yet swept).
    public var learnedCount: Int { table.count }

    /// Makes `port` a delivery target (control path).
    public mutating func addPort(_ port: Int) {
        precondition(ports.count < maxPorts, "more ports than the switch was built for")
        if !ports.contains(port) { ports.append(port) }
    }

    /// Removes `port` and forgets every address learned on it and its allow-list (control path).
    public mutating func removePort(_ port: Int) {
        ports.removeAll { $0 == port }
        if port >= 0, port < maxPorts {
            portAllowed[port] = nil
            floodSpent[port] = 0
            learnedOn[port] = 0
        }
        table = table.filter { $0.value.port != port }
    }

    /// Lifts the per-port address limit for `port` (the TAP uplink; control path).
    public mutating func exemptFromMACLimit(_ port: Int) {
        if port >= 0, port < maxPorts { unlimited[port] = true }
    }

    /// Whether `source` may send (always true without an allow-list).
    @inline(__always)
    public func isAllowed(_ source: MACAddress) -> Bool { allowed?.contains(source) ?? true }

    /// Gives `port` its own allow-list (nil: none), on top of the network's (control path).
    public mutating func setAllowList(_ macs: [MACAddress]?, port: Int) {
        precondition(port >= 0 && port < maxPorts, "port \(port) out of range")
        portAllowed[port] = macs.map(Set.init)
    }

    /// Whether `source` may send from `port`: the network's list and the port's.
    @inline(__always)
    public func isAllowed(_ source: MACAddress, port: Int) -> Bool {
        guard isAllowed(source) else { return false }
        guard port >= 0, port < maxPorts, let list = portAllowed[port] else { return true }
        return list.contains(source)
    }

    /// What learning one source address did.
    public enum Learning: Equatable, Sendable {
        /// Learned or refreshed (or not learned for lack of room: the frame still goes).
        case learned
        /// Live on another port, which this one may not take it from: drop the frame.
        case conflict
    }

    /// Records that `source` was seen on `port` at `now` (O(1): see the type's notes).
    @inline(__always) @discardableResult
    public mutating func learn(_ source: MACAddress, port: Int, now: UInt64) -> Learning {
        guard port >= 0, port < maxPorts else { return .learned }
        if let e = table[source] {
            if e.port != port {
                let live = !(now > e.lastSeen && now - e.lastSeen > agingNanoseconds)
                if live, !(portAllowed[port]?.contains(source) ?? false) { return .conflict }
                if e.port >= 0, e.port < maxPorts { learnedOn[e.port] -= 1 }
                learnedOn[port] += 1
            }
            table[source] = Entry(port: port, lastSeen: now)  // existing key: no allocation
            return .learned
        }
        if learnedOn[port] >= macsPerPort, !unlimited[port] {
            unlearnedPortLimit &+= 1
            return .learned
        }
        if table.count >= tableCapacity {
            if now >= nextSweep {
                sweep(now: now)
                nextSweep = now &+ sweepIntervalNanoseconds
            }
            if table.count >= tableCapacity {
                unlearnedTableFull &+= 1  // full of live entries: unknown unicast to it floods
                return .learned
            }
        }
        table[source] = Entry(port: port, lastSeen: now)
        learnedOn[port] += 1
        return .learned
    }

    /// The port `destination` was learned on, if it is unicast and not expired.
    @inline(__always)
    public func lookup(_ destination: MACAddress, now: UInt64) -> Int? {
        guard !destination.isMulticast, let e = table[destination] else { return nil }
        // A clock that went backwards (or an entry from the future) counts as fresh.
        return now &- e.lastSeen > agingNanoseconds && now > e.lastSeen ? nil : e.port
    }

    /// Drops expired entries (when the table is full, at most once per sweep interval; never per frame).
    public mutating func sweep(now: UInt64) {
        let aging = agingNanoseconds
        table = table.filter { !(now > $0.value.lastSeen && now - $0.value.lastSeen > aging) }
        table.reserveCapacity(tableCapacity)
        for i in learnedOn.indices { learnedOn[i] = 0 }
        for e in table.values where e.port >= 0 && e.port < maxPorts { learnedOn[e.port] += 1 }
        sweeps &+= 1
    }

    /// Where one frame goes.
    public enum Destination: Equatable, Sendable {
        /// The port that learned the destination address.
        case port(Int)
        /// Every port but the ingress one (`ports`): broadcast, multicast, unknown unicast.
        /// The ingress port's flood budget has been charged.
        case flood
        case dropped(PortDrop)
    }

    /// Switches one validated frame that arrived on `ingress`: checks the
    /// allow-list (when `checkAllowList`), learns the source, and says where the
    /// frame goes: the learned port for known unicast (never back to `ingress`:
    /// `.dropped(.filtered)`), a flood for broadcast, multicast and unknown
    /// unicast (within `ingress`'s flood budget, else `.dropped(.floodLimited)`).
    /// The caller moves the frame; the switch never calls back.
    @inline(__always)
    public mutating func route(
        _ frame: PacketFrame.Summary, ingress: Int, now: UInt64, checkAllowList: Bool = true
    ) -> Destination {
        if checkAllowList, !isAllowed(frame.source, port: ingress) { return .dropped(.notAllowed) }
        if learn(frame.source, port: ingress, now: now) == .conflict { return .dropped(.macConflict) }
        if let port = lookup(frame.destination, now: now) {
            return port == ingress ? .dropped(.filtered) : .port(port)
        }
        return spendFloodBudget(ingress: ingress, now: now) ? .flood : .dropped(.floodLimited)
    }

    /// Charges one flood from `ingress` (a copy per other port) to its budget; false when the window's budget is spent.
    @inline(__always)
    private mutating func spendFloodBudget(ingress: Int, now: UInt64) -> Bool {
        guard ingress >= 0, ingress < maxPorts else { return true }
        let copies = ports.count - (ports.contains(ingress) ? 1 : 0)
        // A new window (or a clock that went backwards) starts the budget afresh.
        if now &- floodWindowStart[ingress] >= Self.floodWindowNanoseconds || now < floodWindowStart[ingress] {
            floodWindowStart[ingress] = now
            floodSpent[ingress] = 0
        }
        let spent = floodSpent[ingress]
        // Both ≤ maxPorts × budget: far from overflow.
        guard spent == 0 || spent + copies <= floodBudget else { return false }
        floodSpent[ingress] = spent + copies
        return true
    }
}
