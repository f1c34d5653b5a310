/// A `key=value,key,...` flag value (`--export`, `--network`, `--disk`, `--nic`) split
/// once: its items in order, empty items skipped, each split at its first `=` only (a
/// value may hold `=` and `:`). A bare key has no value; `key=` has an empty one.
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

    /// Splits `text`.
    public init(_ text: String) {
        items = text.split(separator: ",").map { item in
            guard let eq = item.firstIndex(of: "=") else { return Item(key: String(item)) }
            return Item(key: String(item[..<eq]), value: String(item[item.index(after: eq)...]))
        }
    }
}
