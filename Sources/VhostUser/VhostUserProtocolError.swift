/// A message the back-end refuses: malformed framing or a request that is
/// invalid in the connection's current state. The connection is closed
/// after logging `description`, which names the request and the fault.
public struct VhostUserProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong.
    public enum Kind: Sendable, Equatable {
        case truncatedHeader(received: Int)
        case truncatedPayload(expected: Int, received: Int)
        case badFlags(UInt32)
        case unknownRequest(UInt32)
        case unsupportedRequest
        case payloadTooLarge(size: Int, max: Int)
        case sizeMismatch(expected: Int, received: Int)
        case fdCount(expected: ClosedRange<Int>, received: Int)
        case tooManyFDs
        /// A field value is out of range or inconsistent (message says which).
        case invalid(String)
        /// Requires a feature the front-end did not negotiate.
        case notNegotiated(String)
        /// The device or system refused the request.
        case failed(String)
    }

    /// The request, when the code was known.
    public let request: VhostUserRequest?
    public let kind: Kind

    public init(request: VhostUserRequest?, _ kind: Kind) {
        self.request = request
        self.kind = kind
    }

    public var description: String {
        let name = request.map { "\($0)" } ?? "message"
        switch kind {
        case .truncatedHeader(let n): return "\(name): truncated header (\(n) of \(VhostUserHeader.size) bytes)"
        case .truncatedPayload(let e, let n): return "\(name): truncated payload (\(n) of \(e) bytes)"
        case .badFlags(let f): return "\(name): bad flags 0x\(String(f, radix: 16)) (version must be 1, REPLY clear, reserved bits zero)"
        case .unknownRequest(let c): return "unknown request code \(c)"
        case .unsupportedRequest: return "\(name): request not supported by this back-end"
        case .payloadTooLarge(let s, let m): return "\(name): payload size \(s) exceeds maximum \(m)"
        case .sizeMismatch(let e, let n): return "\(name): payload size \(n), expected \(e)"
        case .fdCount(let e, let n):
            let want = e.lowerBound == e.upperBound ? "\(e.lowerBound)" : "\(e.lowerBound)...\(e.upperBound)"
            return "\(name): received \(n) fds, expected \(want)"
        case .tooManyFDs: return "\(name): too many fds attached (surplus closed)"
        case .invalid(let why): return "\(name): \(why)"
        case .notNegotiated(let what): return "\(name): \(what) not negotiated"
        case .failed(let why): return "\(name): failed: \(why)"
        }
    }
}
