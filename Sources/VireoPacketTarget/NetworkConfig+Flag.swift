import VireoDaemon

extension NetworkConfig {
    /// Parses a `--network` value: comma-separated `key=value` items, e.g.
    /// `name=lan0,mtu=9000,tap=vtap0`.
    ///
    /// Keys: name, mtu, tap, aging (seconds), receive-buffers, max-ports,
    /// mac-table-size, allowed-macs (`+`-separated MACs), port (`NAME` or
    /// `NAME:MAC+MAC`, repeatable: a named port and its allow-list). Not validated here
    /// (`problems()`, called by the target's config validation).
    public init(flag text: String) throws(ConfigError) {
        let r = FlagReader(flag: "--network", text: text)
        var n = NetworkConfig(reading: r)
        for value in r.strings("port", what: "a name (port=NAME or port=NAME:MAC+MAC)") {
            var problems: [String] = []
            if let p = PortConfig(flag: value, problems: &problems) { n?.ports.append(p) }
            for p in problems { r.problem(p) }
        }
        self = try r.result(n)
    }
}
