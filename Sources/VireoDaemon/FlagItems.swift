/// A `key=value,key,...` flag value (`--export`, `--network`, `--disk`, `--nic`) split
/// once: its items in order, empty items skipped, each split at its first `=` only (a
/// value may hold `=` and `:`). A bare key has no value; `key=` has an empty one; a bare
/// item with `:` continues the value before it (a list of addresses).
/// `FlagReader` hands out the values by key.
public struct FlagItems: Equatable, Sendable {
    /// One `key=value` or bare `key` item.
    public struct Item: Equatable, Sendable {
        public var key: String
        /// nil for a bare key.
        public var value: String?

        public init(key: String, value: String? = nil) {
            self.key = key
            self.value = value
        }
    }

    /// The items, in the order given.
    public var items: [Item]

    /// Splits `text`. A bare item holding `:` continues the value before it (no key has
    /// one): `target=a:4420,b:4420` is one item, `target` = "a:4420,b:4420".
    public init(_ text: String) {
        var out: [Item] = []
        for item in text.split(separator: ",") {
            guard let eq = item.firstIndex(of: "=") else {
                if item.contains(":"), let last = out.indices.last, let v = out[last].value {
                    out[last].value = v + "," + item
                } else {
                    out.append(Item(key: String(item)))
                }
                continue
            }
            out.append(Item(key: String(item[..<eq]), value: String(item[item.index(after: eq)...])))
        }
        items = out
    }
}
