import CVireoVerbs
import VireoSys

/// Everything the fabric layer can fail with. Each case names what failed, so
/// a single log line tells an operator what to do.
public enum FabricError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A verbs or rdma_cm call failed; the `SystemError` names it and carries errno.
    case call(SystemError)
    /// No RDMA device is present (no rxe link, no RNIC, or the modules are not loaded).
    case noDevice(String)
    /// The named device does not exist.
    case deviceNotFound(String)
    /// An address could not be parsed or resolved.
    case badAddress(String)
    /// The peer rejected the connection on purpose; `privateData` holds its reason.
    case rejected(status: Int32, privateData: [UInt8])
    /// Nothing listens at that address and port (IB CM reject "invalid service id").
    case noListener(String)
    /// The peer could not be reached (address, route or connect unreachable).
    case unreachable(stage: String, status: Int32)
    /// A connection step did not finish in time.
    case timedOut(String)
    /// The connection was disconnected by the peer or the fabric.
    case disconnected
    /// The RDMA device went away under the connection.
    case deviceRemoved
    /// rdma_cm delivered an event we did not expect at this step.
    case unexpectedEvent(stage: String, event: String, status: Int32)
    /// A work request completed with an error status.
    case workCompletion(status: String, opcode: String, wrId: UInt64)
    /// Private data longer than the transport carries.
    case privateDataTooLong(Int, max: Int)
    /// A caller's argument was refused before any verbs call: `call` is what would have run, `why` what was wrong.
    case invalidArgument(call: String, String)

    public var description: String {
        switch self {
        case .call(let e): return e.description
        case .noDevice(let why): return "no RDMA device: \(why)"
        case .deviceNotFound(let name): return "RDMA device \(name) not found"
        case .badAddress(let why): return "bad address: \(why)"
        case .rejected(let status, let pd):
            let text = String(decoding: pd.prefix { $0 != 0 }, as: UTF8.self)
            return "connection rejected by peer (status \(status))" + (text.isEmpty ? "" : ": \(text)")
        case .noListener(let addr): return "nothing listens at \(addr) (connection refused)"
        case .unreachable(let stage, let status): return "peer unreachable during \(stage) (status \(status))"
        case .timedOut(let stage): return "timed out during \(stage)"
        case .disconnected: return "disconnected"
        case .deviceRemoved: return "RDMA device removed"
        case .unexpectedEvent(let stage, let event, let status):
            return "unexpected rdma_cm event \(event) (status \(status)) during \(stage)"
        case .workCompletion(let status, let opcode, let wrId):
            return "work request \(wrId) (\(opcode)) completed with \(status)"
        case .privateDataTooLong(let n, let max): return "private data of \(n) bytes exceeds \(max)"
        case .invalidArgument(let call, let why): return "\(call): invalid argument: \(why)"
        }
    }
}

extension FabricError {
    /// Runs a wrapper from VireoSys and lifts its error into `FabricError.call`.
    @inline(__always)
    static func wrap<T>(_ body: () throws(SystemError) -> T) throws(FabricError) -> T {
        do { return try body() } catch { throw .call(error) }
    }
}
