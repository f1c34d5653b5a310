/// A control method's failure, answered as a JSON-RPC 2.0 error object: the code says
/// which kind (the protocol's own codes, or Vireo's from -32000 down), the message what is
/// wrong and what to do.
public struct ControlError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Int
    public var message: String

    public init(code: Int, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Not JSON (-32700).
    public static func parseError(_ m: String) -> ControlError { ControlError(code: -32700, m) }
    /// Not a JSON-RPC 2.0 request (-32600).
    public static func invalidRequest(_ m: String) -> ControlError { ControlError(code: -32600, m) }
    /// No such method (-32601).
    public static func methodNotFound(_ m: String) -> ControlError { ControlError(code: -32601, m) }
    /// Parameters missing, unknown or of the wrong type (-32602); one line per problem.
    public static func invalidParams(_ problems: [String]) -> ControlError {
        ControlError(code: -32602, problems.joined(separator: "; "))
    }
    /// The named thing does not exist (-32001).
    public static func notFound(_ m: String) -> ControlError { ControlError(code: -32001, m) }
    /// It exists already (-32002).
    public static func exists(_ m: String) -> ControlError { ControlError(code: -32002, m) }
    /// It is in use: refused unless forced (-32003).
    public static func busy(_ m: String) -> ControlError { ControlError(code: -32003, m) }
    /// The change could not be made (the system refused: a file that cannot be opened, ...) (-32004).
    public static func failed(_ m: String) -> ControlError { ControlError(code: -32004, m) }
    /// The daemon did not get to it in time (it is stopping, or stuck) (-32005).
    public static func unavailable(_ m: String) -> ControlError { ControlError(code: -32005, m) }

    public var description: String { "\(message) (error \(code))" }
}
