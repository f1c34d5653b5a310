import VireoAuth
import VireoDaemon
import VireoSys
import VireoWire

/// What an initiator requires of one device's target (`[[disk]]`/`[[nic]]`
/// keys `target_key_file` or `target_key_files`, `target_name`; flags
/// `target-key-file=`, `target-key-files=A+B`, `target-name=`): with key files
/// the target must prove it holds one of those secrets (two while the target
/// rotates its key) in every handshake; with a name it must call itself that.
public struct TargetTrust: Equatable, Sendable {
    public var keyFiles: [String]
    public var name: String?

    public init(keyFiles: [String] = [], name: String? = nil) {
        self.keyFiles = keyFiles
        self.name = name
    }
}

extension ConfigReader {
    /// `target_key_file`, `target_key_files` and `target_name`, checked.
    func targetTrust() -> TargetTrust {
        let files = (string("target_key_file", what: "a path").map { [$0] } ?? []) + (list("target_key_files") ?? [])
        let t = TargetTrust(keyFiles: files, name: string("target_name", what: "a name"))
        if let n = t.name, !HandshakeName.isValid(n) { problem(HandshakeName.rule(for: "target_name '\(n)'")) }
        return t
    }
}

extension InitiatorCredentials {
    /// The machine's host name, no secret, nothing required of the target.
    public static var thisMachine: InitiatorCredentials {
        InitiatorCredentials(hostName: HandshakeName.derived(machine: machineHostName()))
    }
}

extension ServeConfig {
    /// The handshake credentials of a device whose target must meet `trust`: this host's
    /// name, and its secret and the target's secrets read from their files at every
    /// connect (so a key file replaced in place takes effect at the next connection; see
    /// docs/security.md, "Rotating keys"). Read once here too: a bad file fails the start.
    public func credentials(for trust: TargetTrust) throws(ConfigError) -> CredentialSource {
        let name = hostName ?? InitiatorCredentials.thisMachine.hostName
        let hostKeyFile = self.hostKeyFile
        let source = CredentialSource(hostName: name) { () throws(ConfigError) -> InitiatorCredentials in
            var c = InitiatorCredentials(hostName: name)
            if let f = hostKeyFile { c.hostKey = try HandshakeKey(file: f, for: "host_key_file") }
            for f in trust.keyFiles { c.targetKeys.append(try HandshakeKey(file: f, for: "target_key_file")) }
            c.targetName = trust.name
            return c
        }
        _ = try source.current()
        return source
    }
}

/// Where a device's connector gets its handshake credentials for each connect:
/// fixed (tests), or read from the key files each time (`ServeConfig.credentials(for:)`).
public struct CredentialSource: Sendable {
    /// This host's name (it does not change while the device lives).
    public let hostName: String
    private let load: @Sendable () throws(ConfigError) -> InitiatorCredentials

    public init(hostName: String, load: @escaping @Sendable () throws(ConfigError) -> InitiatorCredentials) {
        self.hostName = hostName
        self.load = load
    }

    /// Always `credentials`.
    public static func fixed(_ credentials: InitiatorCredentials) -> CredentialSource {
        CredentialSource(hostName: credentials.hostName) { () throws(ConfigError) -> InitiatorCredentials in credentials }
    }

    /// The credentials now (key files read again).
    public func current() throws(ConfigError) -> InitiatorCredentials { try load() }

    /// The connect request's host id.
    public var hostID: [UInt8] { HandshakeTranscript.hostID(of: hostName) }
}
