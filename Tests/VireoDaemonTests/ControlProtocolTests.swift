import Testing
import VireoDaemon

/// JSON-RPC 2.0 as the control API speaks it, one line per message (no socket).
@Suite struct ControlProtocolTests {
    static let engine = ControlProtocol(methods: [
        ControlMethod("echo", "Returns its params.") { p throws(ControlError) in p ?? .null },
        ControlMethod("fail", "Always fails.") { _ throws(ControlError) in throw .busy("in use") },
        ControlMethod("needs_name", "Needs a name.", parameters: ["name (string, required)"]) { p throws(ControlError) in
            let r = JSONParamsReader(p)
            let name = r.requiredString("name", example: "vol0")
            let problems = r.finish()
            guard problems.isEmpty, let name else { throw .invalidParams(problems) }
            return .string(name)
        },
    ])

    static func call(_ line: String) -> JSONValue? {
        engine.respond(to: Array(line.utf8)).flatMap { JSONValue.parse($0) }
    }

    @Test func aCallIsAnsweredWithItsIdAndResult() {
        let r = Self.call(#"{"jsonrpc":"2.0","method":"echo","params":{"a":[1,2.5,"x",true,null]},"id":7}"#)
        #expect(r == ["jsonrpc": "2.0", "id": 7, "result": ["a": [1, .double(2.5), "x", true, nil]]])
        let s = Self.call(#"{"jsonrpc":"2.0","method":"echo","id":"abc"}"#)
        #expect(s?["id"] == "abc" && s?["result"] == .null)
    }

    @Test func everyKindOfBadRequestGetsItsErrorCode() {
        #expect(Self.call("{not json")?["error"]?["code"] == -32700)
        #expect(Self.call(#"[1, 2"#)?["error"]?["code"] == -32700)
        #expect(Self.call(#"{"jsonrpc":"1.0","method":"echo","id":1}"#)?["error"]?["code"] == -32600)
        #expect(Self.call(#"{"jsonrpc":"2.0","id":1}"#)?["error"]?["code"] == -32600)
        #expect(Self.call(#"{"jsonrpc":"2.0","method":"echo","params":3,"id":1}"#)?["error"]?["code"] == -32600)
        #expect(Self.call(#"{"jsonrpc":"2.0","method":"echo","id":{"x":1}}"#)?["error"]?["code"] == -32600)
        #expect(Self.call(#"{"jsonrpc":"2.0","method":"echo","id":1,"extra":1}"#)?["error"]?["code"] == -32600)
        #expect(Self.call(#""a string""#)?["error"]?["code"] == -32600)
        #expect(Self.call("[]")?["error"]?["code"] == -32600)
        let missing = Self.call(#"{"jsonrpc":"2.0","method":"nope","id":1}"#)
        #expect(missing?["error"]?["code"] == -32601)
        #expect(missing?["error"]?["message"]?.string?.contains("rpc_get_methods") == true)
        let failed = Self.call(#"{"jsonrpc":"2.0","method":"fail","id":2}"#)
        #expect(failed?["error"] == ["code": -32003, "message": "in use"] && failed?["id"] == 2)
    }

    /// Parameters are checked like a config file's keys: missing, unknown and mistyped ones
    /// are named, all of them, in one message.
    @Test func invalidParamsNameEveryProblem() {
        let r = Self.call(#"{"jsonrpc":"2.0","method":"needs_name","params":{"name":3,"colour":"red"},"id":1}"#)
        #expect(r?["error"]?["code"] == -32602)
        let m = r?["error"]?["message"]?.string ?? ""
        #expect(m.contains("params: name must be a string, not a number"))
        #expect(m.contains("unknown parameter 'colour'"))
        let absent = Self.call(#"{"jsonrpc":"2.0","method":"needs_name","params":{},"id":1}"#)
        #expect(absent?["error"]?["message"]?.string?.contains("name is missing") == true)
        #expect(Self.call(#"{"jsonrpc":"2.0","method":"needs_name","params":{"name":"v"},"id":1}"#)?["result"] == "v")
    }

    @Test func notificationsAreRunButNotAnswered() {
        #expect(Self.engine.respond(to: Array(#"{"jsonrpc":"2.0","method":"echo"}"#.utf8)) == nil)
        #expect(Self.engine.respond(to: Array(#"[{"jsonrpc":"2.0","method":"echo"}]"#.utf8)) == nil)
    }

    @Test func aBatchIsAnsweredInOrderWithoutItsNotifications() {
        let r = Self.call(#"[{"jsonrpc":"2.0","method":"echo","params":{"n":1},"id":1},{"jsonrpc":"2.0","method":"echo"},{"jsonrpc":"2.0","method":"nope","id":3}]"#)
        #expect(r?.array?.count == 2)
        #expect(r?.array?.first?["result"] == ["n": 1])
        #expect(r?.array?.last?["error"]?["code"] == -32601)
    }

    @Test func rpcGetMethodsListsEveryMethod() {
        let r = Self.call(#"{"jsonrpc":"2.0","method":"rpc_get_methods","id":1}"#)
        let names = Set((r?["result"]?.array ?? []).compactMap { $0["name"]?.string })
        #expect(names == ["echo", "fail", "needs_name", "rpc_get_methods"])
        #expect(r?["result"]?.array?.first { $0["name"] == "needs_name" }?["parameters"] == ["name (string, required)"])
    }

    /// An answer is one line: JSON text with no raw newline, whatever the strings hold.
    @Test func answersAreOneLine() {
        let r = Self.engine.respond(to: Array(#"{"jsonrpc":"2.0","method":"echo","params":{"s":"a\nb"},"id":1}"#.utf8))!
        #expect(!r.contains(10))
        #expect(JSONValue.parse(r)?["result"]?["s"] == "a\nb")
    }
}
