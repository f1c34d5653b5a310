import Testing
import VireoDaemon

@Suite struct FlagItemsTests {
    @Test func splitsOnceSkippingEmptyItems() {
        #expect(FlagItems("a=1,b,c=x").items == [.init(key: "a", value: "1"), .init(key: "b"), .init(key: "c", value: "x")])
        #expect(FlagItems(",,a=1,,b,").items == [.init(key: "a", value: "1"), .init(key: "b")])
        #expect(FlagItems("").items.isEmpty)
    }

    /// A bare item holding `:` continues the value before it (a disk's paths); other bare items stay keys.
    @Test func aBareAddressContinuesTheValueBefore() {
        #expect(FlagItems("target=a:4420,b:4420,[fe80::1]:4420,export=v,ro").items
            == [.init(key: "target", value: "a:4420,b:4420,[fe80::1]:4420"), .init(key: "export", value: "v"), .init(key: "ro")])
        // With nothing before it to continue, it stays an item (and is reported as an unknown key).
        #expect(FlagItems("a:1,ro").items == [.init(key: "a:1"), .init(key: "ro")])
    }

    /// `=` splits at its first occurrence only; `key=` has an empty value, `=v` an empty key.
    @Test func equalsSplitsAtTheFirstOnly() {
        #expect(FlagItems("port=vm1:52:54=x,k=,=v").items
            == [.init(key: "port", value: "vm1:52:54=x"), .init(key: "k", value: ""), .init(key: "", value: "v")])
    }
}

@Suite struct FlagReaderTests {
    @Test func typedValuesByKey() throws {
        let r = FlagReader(flag: "--x", text: "name=vol0,size=64M,queue_depth=4,ro,wait=30s,macs=a+b,port=p1,port=p2")
        #expect(r.string("name") == "vol0")
        #expect(r.byteCount("size") == 64 << 20)
        #expect(r.int("queue-depth") == 4)                      // - and _ alike
        #expect(r.bool("read_only", aliases: "ro") == true)     // a bare key is true
        #expect(r.duration("wait") == 30_000_000_000)
        #expect(r.list("macs") == ["a", "b"])
        #expect(r.strings("port") == ["p1", "p2"])              // repeatable
        #expect(r.int("absent") == nil && r.string("absent2") == nil)
        #expect(try r.result(7) == 7)
    }

    @Test func boolValues() {
        let r = FlagReader(flag: "--x", text: "a=on,b=off,c=true,d=0,read-only")
        #expect(r.bool("a") == true && r.bool("b") == false && r.bool("c") == true && r.bool("d") == false)
        #expect(r.bool("read_only", aliases: "ro", "readonly") == true)
        #expect(r.problems.isEmpty)
    }

    /// Every problem is one line naming the flag, its text and the key; unknown keys list the known ones.
    @Test func everyProblemIsOneLine() {
        let text = "count=x,size=big,wait=soon,ro=maybe,name,colour=red,dup=1,dup=2,k="
        let r = FlagReader(flag: "--x", text: text)
        #expect(r.int("count") == nil)
        #expect(r.byteCount("size") == nil)
        #expect(r.duration("wait") == nil)
        #expect(r.bool("ro") == nil)
        #expect(r.string("name", what: "a path") == nil)
        #expect(r.int("dup") == 2)
        #expect(r.string("k") == nil)
        #expect(r.requiredString("socket", example: "/s") == nil)
        #expect(r.finish() == [
            "count needs an integer, not 'x'",
            "size needs a byte count such as 4096, 64M or 1G, not 'big'",
            "wait needs a duration such as 120s, 500ms or 2m, not 'soon'",
            "ro takes no value (or on/off), not 'maybe'",
            "name needs a path",
            "dup is given 2 times",
            "k needs a value (k=...)",
            "socket is missing (e.g. socket=/s)",
            "unknown key 'colour' (known: count, size, wait, ro, name, dup, k, socket)",
        ].map { "--x \(text): \($0)" })
        #expect(throws: ConfigError.self) { try r.result(1) }
    }

    /// A key given with a wrong value is reported once, not also as missing.
    @Test func requiredKeyWithAWrongValueIsReportedOnce() {
        let r = FlagReader(flag: "--x", text: "socket=")
        #expect(r.requiredString("socket", example: "/s") == nil)
        #expect(r.finish() == ["--x socket=: socket needs a value (socket=...)"])
    }
}

@Suite struct TOMLTableReaderTests {
    @Test func typedValuesByKey() throws {
        let r = try TOMLTableReader(toml: """
            s = "text"
            n = 3
            i = 2
            d = 0.5
            b = true
            size = "64M"
            bytes = 4096
            wait = "2m"
            secs = 5
            macs = ["a", "b"]
            """, source: "x.toml")
        #expect(r.string("s") == "text" && r.int("n") == 3)
        #expect(r.number("i") == 2 && r.number("d") == 0.5)
        #expect(r.bool("b") == true)
        #expect(r.byteCount("size") == 64 << 20 && r.byteCount("bytes") == 4096)
        #expect(r.duration("wait") == 120_000_000_000 && r.duration("secs") == 5_000_000_000)
        #expect(r.list("macs") == ["a", "b"])
        #expect(r.int("absent") == nil)
        #expect(try r.result("ok") == "ok")
    }

    @Test func wrongTypesAreOneLineEach() throws {
        let r = try TOMLTableReader(toml: """
            s = 1
            e = ""
            n = "3"
            d = 0
            b = "yes"
            size = -1
            wait = "soon"
            macs = ["a", 1]
            colour = "red"
            """, source: "x.toml")
        #expect(r.string("s", what: "a path") == nil)
        #expect(r.string("e") == nil)
        #expect(r.int("n") == nil)
        #expect(r.number("d", what: "a positive number of seconds", where: { $0 > 0 }) == nil)
        #expect(r.bool("b") == nil)
        #expect(r.byteCount("size") == nil)
        #expect(r.duration("wait") == nil)
        #expect(r.list("macs") == nil)
        #expect(r.requiredString("name", example: "vol0") == nil)
        #expect(r.finish() == [
            "s must be a path",
            "e must not be empty",
            "n must be an integer",
            "d must be a positive number of seconds",
            "b must be true or false",
            "size must be a byte count such as 4096, \"64M\" or \"1G\"",
            "wait must be a duration such as \"120s\", \"500ms\" or \"2m\", or a number of seconds",
            "macs must be an array of strings",
            "name is missing (e.g. name = \"vol0\")",
            "unknown top-level key 'colour' (known: s, e, n, d, b, size, wait, macs, name)",
        ].map { "x.toml: \($0)" })
    }

    /// Tables of arrays of tables are labelled by name or number and report into the document.
    @Test func tablesAreLabelledAndShareTheProblems() throws {
        let r = try TOMLTableReader(toml: """
            top = 3
            [[item]]
            name = "a"
            size = "x"
            [[item.sub]]
            colour = 1
            [[item]]
            extra = 1
            """)
        #expect(r.int("top") == 3)
        let items = r.tables("item")
        #expect(items.map(\.label) == ["item 'a'", "item #2"])
        for item in items {
            _ = item.string("name")
            _ = item.int("size")
            for sub in item.tables("sub") { #expect(sub.label == "item 'a': sub #1") }
        }
        #expect(r.tables("absent").isEmpty)
        #expect(r.finish() == [
            "item 'a': size must be an integer",
            "item 'a': sub #1: unknown key 'colour'",
            "item #2: unknown key 'extra' (known: name, size, sub)",
        ])
    }

    @Test func notAnArrayOfTables() throws {
        let r = try TOMLTableReader(toml: "item = 3\nlist = [1]\n[[net]]\nport = 2\n", source: "x.toml")
        #expect(r.tables("item").isEmpty && r.tables("list").isEmpty)
        for n in r.tables("net") { #expect(n.tables("port").isEmpty) }
        #expect(r.finish() == [
            "x.toml: item must be an array of tables ([[item]])",
            "x.toml: list #1 must be a table",
            "x.toml: net #1: port must be an array of tables ([[net.port]])",
        ])
    }

    @Test func syntaxErrorsNameTheLine() {
        #expect(throws: ConfigError.self) { try TOMLTableReader(toml: "a = ", source: "x.toml") }
        do {
            _ = try TOMLTableReader(toml: "a = ", source: "x.toml")
        } catch {
            #expect(error.problems.count == 1 && error.problems[0].hasPrefix("x.toml: TOML syntax error at line 1"), "\(error)")
        }
    }
}
