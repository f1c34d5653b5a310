/// Identifies a popped chain for `pushUsed`.
public struct UsedToken: Equatable, Hashable, Sendable {
    /// Split: head descriptor index. Packed: buffer ID (from the chain's last descriptor, §2.8.6).
    public var id: UInt16
    /// Ring descriptors the chain occupied (packed: how far the used position advances, §2.8.6).
    public var descriptorCount: UInt16

    public init(id: UInt16, descriptorCount: UInt16) {
        self.id = id
        self.descriptorCount = descriptorCount
    }
}
