import VireoDaemon
import VireoWire

/// A host the target knows (`[[host]]`): its name, as its initiator sends it in
/// the handshake, and the files holding the target's copies of its secret
/// (`key_file`, or `key_files` with two while the host's key is rotated: a
/// proof under either is taken). Without a key file the host is known by name
/// only: its handshakes carry no proof the target checks (the daemon warns).
public struct HostConfig: Equatable, Sendable {
    public var name: String
    public var keyFiles: [String]

    public init(name: String, keyFiles: [String] = []) {
        self.name = name
        self.keyFiles = keyFiles
    }

    /// Reads `name`, `key_file` and `key_files` (nil: no name).
    public init?(reading r: some ConfigReader) {
        guard let name = r.requiredString("name", example: "compute-1") else { return nil }
        self.name = name
        keyFiles = (r.string("key_file", what: "a path").map { [$0] } ?? []) + (r.list("key_files") ?? [])
    }

    /// Parses a `--host` value: `name=compute-1[,key-file=PATH][,key-files=OLD+NEW]`.
    public init(flag text: String) throws(ConfigError) {
        let r = FlagReader(flag: "--host", text: text)
        self = try r.result(HostConfig(reading: r))
    }

    func problems() -> [String] {
        HandshakeName.isValid(name) ? [] : [HandshakeName.rule(for: "host name '\(name)'")]
    }
}
