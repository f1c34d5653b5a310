import VireoSys

/// A reference-counted `EventFD` (kick, call, err): rings swap these as a
/// whole while the worker is paused, and the worker signals or drains them.
public final class SharedEventFD: Sendable {
    /// The owned eventfd.
    public let event: EventFD
    public init(_ event: consuming EventFD) { self.event = event }
    public var rawValue: Int32 { event.rawValue }
    @inline(__always) public func signal() { event.signal() }
    @inline(__always) @discardableResult public func drain() -> UInt64 { event.drain() }
}
