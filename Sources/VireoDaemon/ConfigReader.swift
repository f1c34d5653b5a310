/// Typed values by key out of one configuration item, a flag value (`FlagReader`) or a
/// TOML table (`TOMLTableReader`), every problem collected as one line. A configuration
/// type reads its keys once, through this, whichever source they come from.
///
/// Keys are given as TOML spells them (`queue_depth`); a flag matches them with dashes
/// too (`queue-depth`). Each accessor returns nil when the key is absent, and when its
/// value is wrong, recording the problem ("queues needs an integer, not 'x'" in a flag,
/// "queues must be an integer" in TOML). Every key asked for is known; `finish()`
/// reports the others as unknown.
public protocol ConfigReader: AnyObject {
    /// Records a problem (the reader puts its context in front).
    func problem(_ message: String)
    /// Whether `key` is given at all.
    func has(_ key: String) -> Bool
    /// `key` as this source spells it, for messages (`queue-depth` in a flag).
    func spelled(_ key: String) -> String
    /// Records that `key`, which every item needs, is absent: "KEY is missing (e.g. ...)".
    func missing(_ key: String, example: String)
    /// A non-empty string; `what` names it in the problem ("a path"; nil: a value, a string).
    func string(_ key: String, what: String?) -> String?
    /// An integer.
    func int(_ key: String) -> Int?
    /// A flag's bare key is true, and so are on/true/1 (off/false/0: false). `aliases` are
    /// other spellings a flag accepts (`ro` for `read_only`); a TOML table takes `key` only.
    func bool(_ key: String, aliases: [String]) -> Bool?
    /// Bytes: an integer, or a size such as "64M" (`parseByteCount`).
    func byteCount(_ key: String) -> Int?
    /// Nanoseconds: a duration such as "120s", "500ms" or "2m" (`parseDuration`), or in
    /// TOML an integer number of seconds.
    func duration(_ key: String) -> UInt64?
    /// Strings: a TOML array of strings, or a flag value of `+`-joined items.
    func list(_ key: String) -> [String]?
    /// Reports every key given that no one asked for, once; returns every problem so far.
    func finish() -> [String]
}

extension ConfigReader {
    public func string(_ key: String) -> String? { string(key, what: nil) }

    public func bool(_ key: String, aliases: String...) -> Bool? { bool(key, aliases: aliases) }

    /// The string of a key every item needs: absent, it is a problem "KEY is missing
    /// (e.g. KEY=EXAMPLE)"; given with a wrong value, it is reported once, as such.
    public func requiredString(_ key: String, example: String) -> String? {
        if let s = string(key) { return s }
        if !has(key) { missing(key, example: example) }
        return nil
    }

    /// `value`, once `finish()` found no problem; else every problem, one line each.
    public func result<T>(_ value: T?) throws(ConfigError) -> T {
        let problems = finish()
        guard problems.isEmpty, let value else {
            throw ConfigError(problems: problems.isEmpty ? ["configuration not usable"] : problems)
        }
        return value
    }
}
