import CVireoVerbs
import VireoSys

/// A protection domain. Memory regions and queue pairs keep their PD alive, so
/// it is deallocated only after every object created on it is gone.
public final class ProtectionDomain: @unchecked Sendable {
    // SAFETY: immutable pointer; ibv_reg_mr/ibv_create_qp on one PD are thread safe.
    package let raw: UnsafeMutablePointer<ibv_pd>
    /// The device context this PD belongs to (kept alive by the PD).
    public let context: VerbsContext

    /// Allocates a PD on `context`.
    public init(context: VerbsContext) throws(FabricError) {
        self.context = context
        raw = try FabricError.wrap { () throws(SystemError) in
            try nonNull("ibv_alloc_pd") { ibv_alloc_pd(context.raw) }
        }
    }

    deinit { ibv_dealloc_pd(raw) }
}
