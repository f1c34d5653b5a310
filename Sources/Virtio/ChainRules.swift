/// The limits the chain walker enforces beyond the queue size.
public struct ChainRules: Equatable, Sendable {
    /// Default bound on indirect table entries (like Linux vhost's UIO_MAXIOV).
    public static let defaultMaxIndirectDescriptors = 1024

    /// VIRTIO_F_INDIRECT_DESC was negotiated (§2.7.5.3.1).
    public var indirectAllowed: Bool
    /// Largest indirect table accepted, in descriptors.
    public var maxIndirectDescriptors: Int

    public init(indirectAllowed: Bool = true, maxIndirectDescriptors: Int = ChainRules.defaultMaxIndirectDescriptors) {
        self.indirectAllowed = indirectAllowed
        self.maxIndirectDescriptors = max(1, maxIndirectDescriptors)
    }
}
