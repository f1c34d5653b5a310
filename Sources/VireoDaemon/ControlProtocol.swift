/// JSON-RPC 2.0 over a stream, one message per line: each request (or batch) is one line of
/// JSON text ending in "\n", each response one line back, in order. Requests without an id
/// are notifications and get no response. Pure: `ControlServer` feeds it lines; tests call
/// it directly.
public struct ControlProtocol: Sendable {
    /// Methods by name.
    public let methods: [String: ControlMethod]
    /// Longest request line accepted.
    public static let maxRequestBytes = 1 << 20

    public init(methods: [ControlMethod]) {
        let lister = ControlMethod("rpc_get_methods", "Lists every method with its summary and parameters.") { _ throws(ControlError) in .null }
        let all = methods + [lister]
        let listed = JSONValue.array(all.map { m -> JSONValue in
            ["name": .string(m.name), "summary": .string(m.summary), "parameters": JSONValue(m.parameters)]
        })
        var byName = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        byName["rpc_get_methods"]?.handler = { _ throws(ControlError) in listed }
        self.methods = byName
    }

    /// Takes the first complete line (without its newline) out of `received`, the bytes read
    /// so far from a stream; nil while none is complete. The framing both ends use.
    public static func takeLine(from received: inout [UInt8]) -> [UInt8]? {
        guard let nl = received.firstIndex(of: 10) else { return nil }
        let line = Array(received[..<nl])
        received.removeSubrange(...nl)
        return line
    }

    /// The response line (without its newline) to one request line; nil when nothing is
    /// answered (notifications only).
    public func respond(to line: some Collection<UInt8>) -> [UInt8]? {
        guard let message = JSONValue.parse(line) else {
            return Self.error(.parseError("not valid JSON: send one JSON-RPC 2.0 request per line"), id: .null).encoded
        }
        if case .array(let batch) = message {
            guard !batch.isEmpty else { return Self.error(.invalidRequest("an empty batch"), id: .null).encoded }
            let answers = batch.compactMap { answer($0) }
            return answers.isEmpty ? nil : JSONValue.array(answers).encoded
        }
        return answer(message)?.encoded
    }

    /// The response object to one request (nil for a notification).
    func answer(_ request: JSONValue) -> JSONValue? {
        guard let r = request.object else {
            return Self.error(.invalidRequest("a request must be an object, not \(request.kind)"), id: .null)
        }
        let id = r["id"]
        switch id {
        case nil, .null?, .string?, .int?, .double?: break
        default: return Self.error(.invalidRequest("id must be a string, a number or null"), id: .null)
        }
        guard r["jsonrpc"] == "2.0" else {
            return Self.error(.invalidRequest("\"jsonrpc\" must be \"2.0\""), id: id ?? .null)
        }
        guard let name = r["method"]?.string else {
            return Self.error(.invalidRequest("\"method\" must be a string"), id: id ?? .null)
        }
        let params = r["params"]
        if let params, params.object == nil, params.array == nil {
            return Self.error(.invalidRequest("params must be an object"), id: id ?? .null)
        }
        for key in r.keys where !["jsonrpc", "method", "params", "id"].contains(key) {
            return Self.error(.invalidRequest("unknown member '\(key)'"), id: id ?? .null)
        }
        let result: Result<JSONValue, ControlError>
        if let method = methods[name] {
            do throws(ControlError) { result = .success(try method.handler(params)) } catch { result = .failure(error) }
        } else {
            result = .failure(.methodNotFound("no method '\(name)'; rpc_get_methods lists them"))
        }
        guard let id else { return nil }  // a notification: done, nothing to say
        switch result {
        case .success(let v): return ["jsonrpc": "2.0", "id": id, "result": v]
        case .failure(let e): return Self.error(e, id: id)
        }
    }

    static func error(_ e: ControlError, id: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "error": ["code": .int(Int64(e.code)), "message": .string(e.message)]]
    }
}
