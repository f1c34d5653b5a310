/// One method of a daemon's control API: its name (SPDK style, `export_create`), what it
/// does and takes (for `rpc_get_methods` and docs/api.md), and the handler, which runs on
/// the control server's thread and returns the result or a `ControlError`.
public struct ControlMethod: Sendable {
    public var name: String
    public var summary: String
    /// The parameters, one line each ("name (string, required): ...").
    public var parameters: [String]
    public var handler: @Sendable (JSONValue?) throws(ControlError) -> JSONValue

    public init(_ name: String, _ summary: String, parameters: [String] = [],
                handler: @escaping @Sendable (JSONValue?) throws(ControlError) -> JSONValue) {
        self.name = name
        self.summary = summary
        self.parameters = parameters
        self.handler = handler
    }
}
