import VireoDaemon

extension ExportConfig {
    /// Parses a `--export` value: comma-separated `key=value` items, e.g.
    /// `name=vol0,file=/tmp/vol0.img,size=64M,ro,block-size=4096`.
    ///
    /// Keys: those of an `[[export]]` table with dashes (`ExportConfig(reading:)`): name,
    /// file, device, memory (bare), size, ro (bare) / read-only, block-size, max-queues,
    /// max-queues-per-host, queue-depth, max-io, max-segments, inline-max. Not validated
    /// here (`TargetConfig.validate`).
    public init(flag text: String) throws(ConfigError) {
        let r = FlagReader(flag: "--export", text: text)
        self = try r.result(ExportConfig(reading: r))
    }
}
